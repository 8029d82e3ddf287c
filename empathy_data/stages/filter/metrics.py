"""Word and character error rates after text normalisation."""

from __future__ import annotations

import re
import unicodedata
import warnings

import jiwer

with warnings.catch_warnings():  # zhconv imports pkg_resources, which warns on every import
    warnings.simplefilter("ignore", UserWarning)
    import zhconv

PUNCT = re.compile(r"[^\w\s']|_", re.UNICODE)
ZH_DROP = re.compile(r"[\s\W_]+", re.UNICODE)
# Whisper writes "I've", "10" and "don't" where a script says "I have", "ten" and "do not" (and the
# reverse): both sides are expanded the same way so that spelling choices are not counted as errors.
CONTRACTIONS = {
    "n't": " not", "'m": " am", "'re": " are", "'ve": " have", "'ll": " will", "'d": " would", "'s": " is",
}  # fmt: skip
IRREGULAR = {"can't": "can not", "cannot": "can not", "won't": "will not", "shan't": "shall not", "let's": "let us"}
CONTRACTION = re.compile(r"\b(\w+)(n't|'m|'re|'ve|'ll|'d|'s)\b")
ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen \
seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
ZH_DIGITS = "零一二三四五六七八九"
NUMBER = re.compile(r"\d+")
THOUSANDS = re.compile(r"(\d),(?=(\d{3})\b)")


def number_words(n: int) -> str:
    """English words for 0..999,999 (larger numbers stay digits)."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        return ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + number_words(n % 100))
    if n < 1_000_000:
        return number_words(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + number_words(n % 1000))
    return str(n)


def zh_number(n: int) -> str:
    """Chinese numerals for 0..9999, the way they are read (十, 二十五, 一百零五); larger stay digits."""
    if n >= 10_000:
        return str(n)
    if n == 0:
        return ZH_DIGITS[0]
    out, zero = "", False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = n // value % 10
        if digit == 0:
            zero = bool(out)
            continue
        out += (ZH_DIGITS[0] if zero else "") + ("" if (unit == "十" and digit == 1 and not out) else ZH_DIGITS[digit])
        out += unit
        zero = False
    return out


def normalise_en(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'").replace("-", " ")
    text = THOUSANDS.sub(r"\1", text)
    text = NUMBER.sub(lambda m: " " + number_words(int(m.group())) + " ", text)
    text = PUNCT.sub(" ", text)
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)
    text = " ".join(IRREGULAR.get(w, w) for w in text.split())
    text = CONTRACTION.sub(lambda m: m.group(1) + CONTRACTIONS[m.group(2)], text)
    return " ".join(text.split())


def normalise_zh(text: str) -> str:
    """Simplified characters, no punctuation or spaces: CER then counts only real character errors."""
    text = zhconv.convert(unicodedata.normalize("NFKC", text).lower(), "zh-hans")
    return ZH_DROP.sub("", NUMBER.sub(lambda m: zh_number(int(m.group())), text))


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
