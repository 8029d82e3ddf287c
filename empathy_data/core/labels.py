"""The label vocabulary and its mapping to each training recipe's labels, in one place."""

EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "surprised", "disgusted")
RESPONSE_STYLES: tuple[str, ...] = (
    "comforting",
    "reassuring",
    "calming",
    "encouraging",
    "celebratory",
    "curious",
    "informative",
)
GENDERS: tuple[str, ...] = ("female", "male")
AGE_GROUPS: tuple[str, ...] = ("child", "teen", "young_adult", "adult", "elderly")
LANGUAGES: tuple[str, ...] = ("en", "zh")

# Arousal direction each emotion should carry relative to the same voice's neutral rendering,
# used by the prosody emotion check: +1 raised (pitch/energy/rate up), -1 lowered, 0 unchanged.
AROUSAL: dict[str, int] = {
    "neutral": 0,
    "happy": 1,
    "angry": 1,
    "fearful": 1,
    "surprised": 1,
    "sad": -1,
    "disgusted": -1,
}

# Which reply styles fit which user emotion, with weights; the planner samples from this
# unless the config overrides it.
DEFAULT_STYLE_BY_EMOTION: dict[str, dict[str, float]] = {
    "neutral": {"informative": 0.5, "curious": 0.3, "encouraging": 0.2},
    "happy": {"celebratory": 0.6, "encouraging": 0.2, "curious": 0.2},
    "sad": {"comforting": 0.7, "reassuring": 0.2, "encouraging": 0.1},
    "angry": {"calming": 0.6, "reassuring": 0.3, "comforting": 0.1},
    "fearful": {"reassuring": 0.6, "calming": 0.3, "comforting": 0.1},
    "surprised": {"curious": 0.5, "celebratory": 0.3, "informative": 0.2},
    "disgusted": {"reassuring": 0.4, "calming": 0.3, "informative": 0.3},
}

# The emotion a reply style is spoken with (used for TTS prosody and recipe "reply emotion").
STYLE_EMOTION: dict[str, str] = {
    "comforting": "sad",
    "reassuring": "neutral",
    "calming": "neutral",
    "encouraging": "happy",
    "celebratory": "happy",
    "curious": "surprised",
    "informative": "neutral",
}


# OSUM-EChat's label tags (EChat-200K's data.list lines, which its benchmark EChat-eval follows): uppercase,
# written "<TAG>"; ages between child and old are ADULT (OSUM folds YOUTH and MIDDLE_AGE into it). The recipe
# package keeps its own copy (recipe/empathy_recipe/labels.py); tests/test_eval_set.py pins that they agree.
ECHAT_EMOTION: dict[str, str] = {
    "neutral": "NEUTRAL", "happy": "HAPPY", "sad": "SAD", "angry": "ANGRY",
    "fearful": "FEAR", "surprised": "SURPRISE", "disgusted": "DISGUST",
}  # fmt: skip
ECHAT_AGE: dict[str, str] = {"child": "CHILD", "teen": "ADULT", "young_adult": "ADULT", "adult": "ADULT", "elderly": "OLD"}
ECHAT_GENDER: dict[str, str] = {"female": "FEMALE", "male": "MALE"}
