"""Every mapping from the corpus label vocabulary to a recipe's labels, in one place.

Corpus vocabulary (empathy-data): emotions neutral|happy|sad|angry|fearful|surprised|disgusted,
genders female|male, age groups child|teen|young_adult|adult|elderly. OpenS2S lines carry no label, so it has no map.
"""

from __future__ import annotations

# OSUM-EChat labels. The canonical values (the CHILD/ADULT/OLD, MALE/FEMALE, HAPPY/.../NEUTRAL) go into
# `extra.age` / `extra.gender` / `extra.q_emotion` of a data.list line: no code in OSUM-EChat/wenet reads those
# keys. Where the loader does consume a label -- the target `txt` of the understanding tasks, "<TRANSCRIBE> <AGE>"
# etc., from which processor.py `extract_first_content` takes the first "<...>" and `tokenize` rewrites "<YOUTH>" /
# "<MIDDLE_AGE>" to "<ADULT>" -- it is written in OSUM's "<TAG>" form, `osum_tag(value)`, as in the
# `emotion_tags` / `age_tags` / `gender_tags` sets of processor.py.
OSUM_EMOTION: dict[str, str] = {
    "neutral": "NEUTRAL",
    "happy": "HAPPY",
    "sad": "SAD",
    "angry": "ANGRY",
    "fearful": "FEAR",
    "surprised": "SURPRISE",
    "disgusted": "DISGUST",
}
# OSUM knows CHILD / ADULT / OLD only: a teen is closer to a child's voice, a young adult to an adult's.
OSUM_AGE: dict[str, str] = {"child": "CHILD", "teen": "CHILD", "young_adult": "ADULT", "adult": "ADULT", "elderly": "OLD"}
OSUM_GENDER: dict[str, str] = {"female": "FEMALE", "male": "MALE"}
# BLSP-Emo trains on five emotions (src/instruction_dataset.py emotion2idx); the other two have no counterpart
# and are skipped with reason "emotion.unmapped" rather than forced into a wrong class.
BLSP_EMO_EMOTION: dict[str, str | None] = {
    "neutral": "neutral",
    "happy": "happy",
    "angry": "angry",
    "sad": "sad",
    "surprised": "surprise",
    "fearful": None,
    "disgusted": None,
}
BLSP_EMO_CLASSES: tuple[str, ...] = ("neutral", "happy", "angry", "sad", "surprise")


def osum_tag(value: str) -> str:
    return f"<{value}>"
