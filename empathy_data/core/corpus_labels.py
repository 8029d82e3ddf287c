"""Emotion labels of existing speech corpora mapped onto this package's vocabulary (labels.EMOTIONS), in one
place: `empathy-data ingest` and `empathy-data speakers import` read them.

A label a map leaves out has no honest counterpart here (IEMOCAP's frustrated, RAVDESS's calm, "other"):
ingest stops on it, naming the file and row, unless the user drops it on purpose (`--skip-label`).
Labels are compared lower-cased and stripped.
"""

from __future__ import annotations

# Spellings any corpus may use for our own labels: the default map, and part of every corpus map.
GENERIC: dict[str, str] = {
    "neutral": "neutral", "neu": "neutral",
    "happy": "happy", "hap": "happy", "happiness": "happy", "joy": "happy",
    "sad": "sad", "sadness": "sad",
    "angry": "angry", "ang": "angry", "anger": "angry",
    "fear": "fearful", "fearful": "fearful", "fea": "fearful",
    "surprise": "surprised", "surprised": "surprised", "sur": "surprised",
    "disgust": "disgusted", "disgusted": "disgusted", "dis": "disgusted",
}  # fmt: skip

# Each corpus's own vocabulary (as its files or labels spell it) beyond the generic spellings.
CORPUS_LABELS: dict[str, dict[str, str]] = {
    # IEMOCAP categorical labels: excited is merged into happy, as the usual 4-class setup does;
    # frustrated (fru), other (oth) and no agreement (xxx) have no counterpart.
    "iemocap": {"exc": "happy", "excited": "happy"},
    # MELD: neutral, joy, sadness, anger, surprise, fear, disgust: all generic spellings.
    "meld": {},
    # ESD (Emotional Speech Dataset, en + zh): Neutral, Happy, Angry, Sad, Surprise.
    "esd": {},
    # CREMA-D's file-name codes: ANG, DIS, FEA, HAP, NEU, SAD.
    "crema-d": {},
    # RAVDESS's file-name emotion codes 01-08; 02 (calm) has no counterpart.
    "ravdess": {"01": "neutral", "03": "happy", "04": "sad", "05": "angry", "06": "fearful", "07": "disgusted",
                "08": "surprised"},  # fmt: skip
    # CASIA (Mandarin): angry, fear, happy, neutral, sad, surprise.
    "casia": {},
    # 生气/开心/... as Mandarin corpora and hand-made manifests write them
    "zh": {"中性": "neutral", "平静": "neutral", "开心": "happy", "高兴": "happy", "快乐": "happy", "伤心": "sad",
           "难过": "sad", "悲伤": "sad", "生气": "angry", "愤怒": "angry", "害怕": "fearful", "恐惧": "fearful",
           "惊讶": "surprised", "吃惊": "surprised", "厌恶": "disgusted", "恶心": "disgusted"},  # fmt: skip
}
LABEL_MAPS: tuple[str, ...] = ("generic", *CORPUS_LABELS)


def label_map(name: str) -> dict[str, str]:
    """The named corpus's map (generic spellings included); KeyError for an unknown name."""
    if name == "generic":
        return dict(GENERIC)
    return GENERIC | CORPUS_LABELS[name]


def map_label(raw: str, mapping: dict[str, str]) -> str | None:
    return mapping.get(raw.strip().lower())
