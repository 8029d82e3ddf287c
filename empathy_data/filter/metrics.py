"""Word and character error rates after text normalisation."""

from __future__ import annotations

import re
import unicodedata

import jiwer
import zhconv

PUNCT = re.compile(r"[^\w\s']|_", re.UNICODE)
ZH_DROP = re.compile(r"[\s\W_]+", re.UNICODE)


def normalise_en(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'").replace("-", " ")
    text = PUNCT.sub(" ", text)
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)
    return " ".join(text.split())


def normalise_zh(text: str) -> str:
    """Simplified characters, no punctuation or spaces: CER then counts only real character errors."""
    return ZH_DROP.sub("", zhconv.convert(unicodedata.normalize("NFKC", text).lower(), "zh-hans"))


def error_rates(reference: str, hypothesis: str, language: str) -> tuple[float | None, float]:
    """(WER, CER). WER is None for Chinese, which has no word boundaries; CER is used there."""
    if language == "zh":
        ref, hyp = normalise_zh(reference), normalise_zh(hypothesis)
        if not ref:
            return None, 0.0 if not hyp else 1.0
        return None, float(jiwer.cer(ref, hyp or " "))
    ref, hyp = normalise_en(reference), normalise_en(hypothesis)
    if not ref:
        return (0.0, 0.0) if not hyp else (1.0, 1.0)
    return float(jiwer.wer(ref, hyp or "")), float(jiwer.cer(ref, hyp or " "))
