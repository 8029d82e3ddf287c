"""Every mapping from the corpus label vocabulary to a recipe's labels, in one place.

Corpus vocabulary (empathy-data): emotions neutral|happy|sad|angry|fearful|surprised|disgusted,
genders female|male, age groups child|teen|young_adult|adult|elderly. OpenS2S lines carry no label, so it has no map.
"""

from __future__ import annotations

# OSUM-EChat labels. The canonical values (CHILD/ADULT/OLD, MALE/FEMALE, HAPPY/.../NEUTRAL) go into `extra.age` /
# `extra.gender` / `extra.q_emotion` of a data.list line. The default pipeline (dataset.py imports processor.py)
# does not read them; the tag-think pipeline does: processor_tag_think.py l.651-668 @ f2bcfac reads age, gender,
# caption and q_emotion and wraps a bare value in "<...>", so "ADULT" and the samples' "<ADULT>" read the same.
# Where processor.py consumes a label -- the target `txt` of the understanding tasks, "<TRANSCRIBE> <AGE>" etc.,
# from which `extract_first_content` takes the first "<...>" -- it is written in the "<TAG>" form, `osum_tag(value)`.
OSUM_EMOTION: dict[str, str] = {
    "neutral": "NEUTRAL",
    "happy": "HAPPY",
    "sad": "SAD",
    "angry": "ANGRY",
    "fearful": "FEAR",
    "surprised": "SURPRISE",
    "disgusted": "DISGUST",
}
# OSUM knows CHILD / ADULT / OLD only, and folds every age between child and old into ADULT: `tokenize` rewrites
# "<YOUTH>", "<MIDDLE_AGE>" and "<MIDDLE>" to "<ADULT>" (processor.py l.675-679 @ f2bcfac; infer_gradio.py:222
# the same). A teen goes where OSUM puts youth: ADULT.
OSUM_AGE: dict[str, str] = {"child": "CHILD", "teen": "ADULT", "young_adult": "ADULT", "adult": "ADULT", "elderly": "OLD"}
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
