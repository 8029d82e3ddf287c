"""Checks on a written script. Each returns a reason string when it fails, None when it passes."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from empathy_data.config.model import ValidationRules
from empathy_data.records.reasons import Reason
from empathy_data.records.schema import Script

STAGE_DIRECTION = re.compile(r"\*[^*]+\*|\([^)]*\)|\[[^\]]*\]|（[^）]*）|【[^】]*】")
MARKDOWN = re.compile(r"(^|\s)(#{1,6}\s|[-*]\s|\d+\.\s)|\*\*|__|`")
# Pieces of the JSON reply leaking into the words: `...”}]} {"` when a small model loses the string's end.
JSON_FRAGMENT = re.compile(r'[{}"]')
EMOJI = re.compile("[\U0001f000-\U0001faff\U00002600-\U000027bf\U0001f900-\U0001f9ff\ufe0f]")
# Narration or labels instead of spoken words: "The user says...", "Assistant: ...", "Reassuring: ...".
META = re.compile(
    r"^\s*(the )?(user|assistant|person)\b|^\s*[\w ]{1,20}:\s|^[\"'“「]|^\s*(用户|助手|这个人)", re.IGNORECASE
)
REFUSAL = re.compile(
    r"as an ai|as a language model|i'?m (just )?an ai|i am (just )?an ai|i'?m sorry,? but i can(not|'t)"
    r"|i cannot help with|作为(一个)?(人工智能|AI|语言模型)|我(只)?是(一个)?(人工智能|AI)"
    r"|(抱歉|对不起)[，,]?\s*我(无法|不能)(协助|帮助|完成)",
    re.IGNORECASE,
)
# A reasoning note may quote the user, so quotes are fine there; braces or a JSON key are reply debris
# (seen: '只输出 JSON。 ...' and '"}, {"user": ...' inside notes).
NOTE_JSON_DEBRIS = re.compile(r'[{}]|"\s*(user|assistant|reasoning|exchanges)\s*"\s*:|只输出\s*JSON|output only json', re.IGNORECASE)
# Talk about the conversation instead of in it, anywhere in a turn: "The comforting reply helps make them
# feel safe again." (the prompt's instructions read aloud).
# Checked on assistant turns only: a user may well speak of "the response from the university".
NARRATION = re.compile(r"\bthe (user|assistant)('s)?\b|\bthe (\w+ )?(reply|response)\b|(这个|该)(用户|助手)|(安慰|回复)的话", re.IGNORECASE)
# The first gendered pronoun of a note is the user (the 0.5B writer calls elderly men "she"); later ones
# may be anyone the user talks about ("his wife ... she").
PRONOUN = {
    "en": (re.compile(r"\b(she|her|hers|herself|he|him|his|himself)\b", re.IGNORECASE), {"she", "her", "hers", "herself"}),
    "zh": (re.compile("(?<!其)[他她](?![们人])"), {"她"}),
}
CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN = re.compile(r"[A-Za-z]")


def words(text: str, language: str) -> int:
    return len(CJK.findall(text)) // 2 if language == "zh" else len(text.split())


def check_lengths(script: Script, rules: ValidationRules) -> str | None:
    lang = script.spec.language
    for i, turn in enumerate(script.turns):
        n = words(turn.text, lang)
        if n < rules.min_words:
            return f"turn {i} too short ({n} words)"
        if n > rules.max_words:
            return f"turn {i} too long ({n} words)"
    for i, note in enumerate(script.reasoning):
        n = words(note, lang)
        if not rules.min_reasoning_words <= n <= rules.max_reasoning_words:
            return f"reasoning {i} has {n} words"
    return None


def check_style(script: Script, rules: ValidationRules) -> str | None:
    for i, turn in enumerate(script.turns):
        if STAGE_DIRECTION.search(turn.text):
            return f"turn {i} has a stage direction"
        if JSON_FRAGMENT.search(turn.text):
            return f"turn {i} has JSON fragments"
        if EMOJI.search(turn.text):
            return f"turn {i} has emoji"
        if MARKDOWN.search(turn.text):
            return f"turn {i} has markdown"
        if META.search(turn.text) or (turn.role == "assistant" and NARRATION.search(turn.text)):
            return f"turn {i} narrates or labels instead of speaking"
    for i, note in enumerate(script.reasoning):
        if MARKDOWN.search(note):
            return f"reasoning {i} has markdown"
        if EMOJI.search(note):
            return f"reasoning {i} has emoji"
    return None


def check_refusal(script: Script, rules: ValidationRules) -> str | None:
    for i, turn in enumerate(script.turns):
        if REFUSAL.search(turn.text):
            return f"turn {i} has refusal or 'as an AI' phrasing"
    for i, note in enumerate(script.reasoning):
        if REFUSAL.search(note):
            return f"reasoning {i} has refusal or 'as an AI' phrasing"
    return None


def check_notes(script: Script, rules: ValidationRules) -> str | None:
    pronoun, feminine = PRONOUN.get(script.spec.language, (None, set()))
    for i, note in enumerate(script.reasoning):
        if NOTE_JSON_DEBRIS.search(note):
            return f"reasoning {i} has JSON fragments"
        first = pronoun.search(note) if pronoun else None
        if first and (first.group().lower() in feminine) != (script.spec.user.gender == "female"):
            return f"reasoning {i} calls the {script.spec.user.gender} user {first.group()!r}"
    return None


def check_language(script: Script, rules: ValidationRules) -> str | None:
    lang = script.spec.language
    for i, turn in enumerate(script.turns):
        cjk, latin = len(CJK.findall(turn.text)), len(LATIN.findall(turn.text))
        if lang == "zh" and cjk < 2 * latin + 1:
            return f"turn {i} is not mostly Chinese"
        if lang == "en" and (latin == 0 or cjk > 0):
            return f"turn {i} is not English"
    return None


def check_note_language(script: Script, rules: ValidationRules) -> str | None:
    lang = script.spec.language
    for i, note in enumerate(script.reasoning):
        cjk, latin = len(CJK.findall(note)), len(LATIN.findall(note))
        if lang == "zh" and cjk < latin:  # a note may quote a word or two of English
            return f"reasoning {i} is not mostly Chinese"
        if lang == "en" and (latin == 0 or cjk > 0):
            return f"reasoning {i} is not English"
    return None


def check_repetition(script: Script, rules: ValidationRules) -> str | None:
    texts = [t.text.strip().lower() for t in script.turns]
    if len(set(texts)) < len(texts):
        return "a turn repeats another turn"
    for i, text in enumerate(texts):
        tokens = list(text) if script.spec.language == "zh" else text.split()
        trigrams = Counter(zip(tokens, tokens[1:], tokens[2:], strict=False))
        if trigrams and trigrams.most_common(1)[0][1] >= 3:
            return f"turn {i} repeats a phrase"
    language = script.spec.language
    n = COPY_SPAN.get(language, COPY_SPAN["en"])
    for i in range(1, len(script.turns), 2):  # an assistant turn that hands the user's words back
        heard = spans(spoken_tokens(script.turns[i - 1].text, language), n)
        if heard & spans(spoken_tokens(script.turns[i].text, language), n):
            return f"turn {i} parrots the user's turn"
    return None


COPY_SPAN = {"zh": 8, "en": 6}  # a shared run this long (characters / words) is copying, not coincidence


def spoken_tokens(text: str, language: str) -> list[str]:
    if language == "zh":
        return CJK.findall(text)
    return re.findall(r"[a-z']+", text.lower())


def spans(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def check_copied_prompt(script: Script, prompt: str) -> str | None:
    """Small models often hand back the prompt's worked example instead of writing for this scenario."""
    if not prompt:
        return None
    language = script.spec.language
    n = COPY_SPAN.get(language, COPY_SPAN["en"])
    prompt_spans = spans(spoken_tokens(prompt, language), n)
    for i, turn in enumerate(script.turns):
        if spans(spoken_tokens(turn.text, language), n) & prompt_spans:
            return f"turn {i} copies the prompt"
    for i, note in enumerate(script.reasoning):
        if spans(spoken_tokens(note, language), n + 4) & prompt_spans:  # a note may echo the plan's words
            return f"reasoning {i} copies the prompt"
    return None


CHECKS: dict[str, Callable[[Script, ValidationRules], str | None]] = {
    "language": check_language,
    "style": check_style,
    "notes": check_notes,
    "refusal": check_refusal,
    "note_language": check_note_language,
    "length": check_lengths,
    "repetition": check_repetition,
}


def validate_script(script: Script, rules: ValidationRules, prompt: str = "") -> Reason | None:
    """The first failing check, or None when the script passes all of them.

    `prompt` is the instruction text the model was given (system message): turns must not copy it.
    """
    for name, check in CHECKS.items():
        reason = check(script, rules)
        if reason:
            return Reason(stage="script", check=name, detail=reason)
    reason = check_copied_prompt(script, prompt)
    return Reason(stage="script", check="copy", detail=reason) if reason else None
