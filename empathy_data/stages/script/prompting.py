"""Pure functions around the LLM call: the JSON schema and messages from a spec, the parse of its reply."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from empathy_data.planning.prompt_library import PromptLibrary
from empathy_data.records.schema import DialogueSpec, Script, ScriptTurn

AGE_PHRASES = {
    "en": {
        "child": "young",
        "teen": "teenage",
        "young_adult": "young adult",
        "adult": "adult",
        "elderly": "elderly",
    },
    "zh": {"child": "小", "teen": "十几岁的", "young_adult": "年轻的", "adult": "成年", "elderly": "年长的"},
}
GENDER_WORDS = {
    "en": {("female", "child"): "girl", ("male", "child"): "boy", "female": "woman", "male": "man"},
    "zh": {("female", "child"): "女孩", ("male", "child"): "男孩", "female": "女性", "male": "男性"},
}
# The user's pronouns, for the worked example's note: a note written for a man that copies an example's
# "she" is what made the 0.5B writer call elderly men "she".
PRONOUNS = {"en": {"male": ("he", "his"), "female": ("she", "her")}, "zh": {"male": ("他", "他的"), "female": ("她", "她的")}}
MAX_TURN_CHARS = 320
MAX_REASONING_CHARS = 400


def response_schema(spec: DialogueSpec, num_exchanges: int | None = None) -> dict[str, Any]:
    """Exactly one object per exchange, roles fixed by key: the LLM cannot change the turn structure.

    `num_exchanges` 1 asks for a single exchange (writing a dialogue one exchange per request)."""
    text = {"type": "string", "minLength": 2, "maxLength": MAX_TURN_CHARS}
    exchange = {
        "type": "object",
        "properties": {
            "user": text,
            "reasoning": {"type": "string", "minLength": 2, "maxLength": MAX_REASONING_CHARS},
            "assistant": text,
        },
        "required": ["user", "reasoning", "assistant"],
        "additionalProperties": False,
    }
    n = spec.num_exchanges if num_exchanges is None else num_exchanges
    return {
        "type": "object",
        "properties": {"exchanges": {"type": "array", "items": exchange, "minItems": n, "maxItems": n}},
        "required": ["exchanges"],
        "additionalProperties": False,
    }


REQUEST_TAGS = {"en": "Conversation {id}, draft {n}.", "zh": "对话 {id}，第 {n} 稿。"}


EXCHANGE_TAGS = {"en": " Exchange {k}.", "zh": "第 {k} 轮。"}


def request_tag(spec: DialogueSpec, attempt: int, exchange: int | None = None) -> str:
    """First line of every prompt. Servers that reuse the KV cache of the previous prompt (llama.cpp)
    give slightly different numerics, and so different text, depending on how much of the prompt they
    reuse; a line unique to the request keeps the reused prefix the same whatever ran before."""
    tag = REQUEST_TAGS.get(spec.language, REQUEST_TAGS["en"]).format(id=spec.dialogue_id, n=attempt + 1)
    if exchange is not None:
        tag += EXCHANGE_TAGS.get(spec.language, EXCHANGE_TAGS["en"]).format(k=exchange + 1)
    return tag


def person(language: str, gender: str, age_group: str) -> str:
    """'an elderly woman', '年长的女性': a contrast group's speaker in words."""
    words = GENDER_WORDS[language]
    noun = words.get((gender, age_group), words[gender])
    if language == "zh":
        return f"{AGE_PHRASES[language][age_group]}{noun}"
    phrase = f"{AGE_PHRASES[language][age_group]} {noun}"
    return f"{'an' if phrase[0] in 'aeiou' else 'a'} {phrase}"


def prompt_context(spec: DialogueSpec, prompts: PromptLibrary, written: list[dict[str, str]] | None = None) -> dict:
    """What the templates see: the plan in words, and `written` / `current` (the exchanges so far)."""
    lang = spec.language
    user = spec.user
    vocabulary = prompts.vocabulary_for(lang)
    exchanges = []
    for i in range(spec.num_exchanges):
        emotion = spec.turns[2 * i].emotion or "neutral"
        style = spec.turns[2 * i + 1].response_style or "informative"
        exchanges.append(
            {
                "emotion": emotion,
                "emotion_description": vocabulary.emotions[emotion],
                "style": style,
                "style_description": vocabulary.response_styles[style],
            }
        )
    words = GENDER_WORDS[lang]
    he, his = PRONOUNS[lang][user.gender]
    return {
        "he": he,
        "his": his,
        "scenario": spec.scenario_text,
        "age_phrase": AGE_PHRASES[lang][user.age_group],
        "gender": words.get((user.gender, user.age_group), words[user.gender]),
        "exchanges": exchanges,
        "written": written or [],
        "current": None if written is None else len(written),
        "heard": spec.given_user_text,
        # a contrast group's first member: who else will say its words, and how
        "contrast": [
            {"person": person(lang, v.gender, v.age_group),
             "emotion": v.emotion, "emotion_description": vocabulary.emotions[v.emotion]}
            for v in spec.contrast.variants
        ] if spec.contrast is not None and spec.contrast.member == 0 else None,
    }  # fmt: skip


def build_messages(
    spec: DialogueSpec,
    prompts: PromptLibrary,
    attempt: int = 0,
    tag: bool = True,
    written: list[dict[str, str]] | None = None,
) -> list[dict[str, str]]:
    """The request for a whole dialogue or, with `written` (the exchanges accepted so far, possibly
    none), for its next exchange only: templates see `current` (0-based index, or None) and `written`."""
    lang = spec.language
    context = prompt_context(spec, prompts, written)
    exchange = None if written is None else len(written)
    # a recorded query or a contrast group's words: the person's words are given, only the reply is written
    kind = "user" if context["heard"] is None else "reply"
    content = prompts.template(kind, lang).render(**context).strip()
    if context["contrast"]:
        content += "\n" + prompts.template("contrast", lang).render(**context).strip()
    return [
        {
            "role": "system",
            "content": (request_tag(spec, attempt, exchange) + "\n" if tag else "")
            + prompts.template("system", lang).render(**context).strip(),
        },
        {"role": "user", "content": content},
    ]


class MalformedOutput(ValueError):
    """The LLM reply is not JSON of the requested shape."""


class CutOff(MalformedOutput):
    """The reply stopped at its token budget before the JSON closed."""


class CutOffReply(str):
    """A reply the server ended because it reached max_tokens (finish_reason "length")."""

    max_tokens: int = 0

    def __new__(cls, text: str, max_tokens: int) -> CutOffReply:
        reply = super().__new__(cls, text)
        reply.max_tokens = max_tokens
        return reply

    def __reduce__(self):
        return (CutOffReply, (str(self), self.max_tokens))


def requested_exchanges(schema: dict[str, Any]) -> int:
    exchanges = schema["properties"].get("exchanges")  # a judge's schema asks for none
    return int(exchanges["minItems"]) if exchanges else 1


def token_budget(max_tokens: int, per_exchange: int, schema: dict[str, Any]) -> int:
    """max_tokens for one exchange, per_exchange more for each further exchange the schema asks for."""
    return max_tokens + per_exchange * max(requested_exchanges(schema) - 1, 0)


# A small model writing Chinese sometimes "closes" a JSON string with a full-width quote, which the
# grammar takes as text, and then types the rest of the JSON into the string: 今天很难过。”}]} {
JSON_TAIL = re.compile(r'\s*[”"]\s*[}\]`{][\s}\]`{,"]*$')


def one_line(text: str) -> str:
    """The turn as one line, without a JSON tail the model typed into the string."""
    return JSON_TAIL.sub("", " ".join(text.split()))


def load_reply(content: str | None) -> Any:
    """A reply's JSON, or CutOff (it stopped at its token budget) / MalformedOutput."""
    if isinstance(content, CutOffReply) and not content:
        raise CutOff(f"reply reached max_tokens {content.max_tokens} before its JSON closed")
    if not content:
        raise MalformedOutput("empty reply")
    try:
        # small models sometimes put a raw newline or tab inside a string; the words are still fine
        return json.loads(content, strict=False)
    except json.JSONDecodeError as exc:
        if isinstance(content, CutOffReply):
            raise CutOff(f"reply reached max_tokens {content.max_tokens} before its JSON closed") from None
        raise MalformedOutput(f"not JSON ({exc.msg} at char {exc.pos})") from None


def parse_reply(
    spec: DialogueSpec, content: str | None, llm: dict[str, Any], num_exchanges: int | None = None
) -> Script:
    """The reply as a Script; with `num_exchanges` (one exchange per request) a Script of just those."""
    expected = spec.num_exchanges if num_exchanges is None else num_exchanges
    data = load_reply(content)
    exchanges = data.get("exchanges") if isinstance(data, dict) else None
    if not isinstance(exchanges, list) or len(exchanges) != expected:
        raise MalformedOutput(f"expected {expected} exchanges")
    turns: list[ScriptTurn] = []
    reasoning: list[str] = []
    for i, ex in enumerate(exchanges):
        if not isinstance(ex, dict) or not all(isinstance(ex.get(k), str) for k in ("user", "reasoning", "assistant")):
            raise MalformedOutput(f"exchange {i} lacks user/reasoning/assistant strings")
        # given words (a recording's transcript, a contrast group's) stay as given, whatever the model copied
        heard = spec.given_user_text if i == 0 else None
        turns.append(ScriptTurn(role="user", text=heard or one_line(ex["user"])))
        turns.append(ScriptTurn(role="assistant", text=one_line(ex["assistant"])))
        reasoning.append(one_line(ex["reasoning"]))
    return Script(spec=spec, turns=turns, reasoning=reasoning, llm=llm)


class SamplingView:
    """What every chat backend shares: a view with other sampling settings, and the sampling in its identity."""

    config: Any

    def with_sampling(self, **settings: Any):
        """The same client (or engine) with other sampling settings: the script judge's view."""
        view = copy.copy(self)
        view.config = self.config.model_copy(update=settings)
        return view

    def sampling_identity(self, backend: str, **extra: Any) -> dict[str, Any]:
        c = self.config
        return {
            "backend": backend,
            "model": c.model,
            **extra,
            "temperature": c.temperature,
            "top_p": c.top_p,
            "frequency_penalty": c.frequency_penalty,
            "presence_penalty": c.presence_penalty,
            "max_tokens": c.max_tokens,
            "max_tokens_per_exchange": c.max_tokens_per_exchange,
        }
