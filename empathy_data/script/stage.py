"""The script stage: specs in, validated scripts out; every spec ends as a script or an outcome."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from empathy_data.config import ValidationRules
from empathy_data.hashing import digest
from empathy_data.prompt_library import PromptLibrary
from empathy_data.schema import DialogueSpec, Outcome, Script
from empathy_data.script.prompting import MalformedOutput, build_messages, parse_reply, response_schema
from empathy_data.script.validate import validate_script


class ChatBackend(Protocol):
    @property
    def identity(self) -> dict[str, Any]: ...

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any], seed: int) -> str | None: ...


def attempt_seed(dialogue_id: str, attempt: int) -> int:
    return int(digest([dialogue_id, attempt], 8), 16) % (2**31)


def write_one(
    spec: DialogueSpec,
    backend: ChatBackend,
    prompts: PromptLibrary,
    rules: ValidationRules,
    max_attempts: int,
) -> Script | Outcome:
    schema = response_schema(spec)
    reasons: list[str] = []
    malformed = 0
    for attempt in range(max_attempts):
        seed = attempt_seed(spec.dialogue_id, attempt)
        try:
            content = backend.complete(build_messages(spec, prompts, attempt), schema, seed)
        except Exception as exc:  # transport retries are the client's; what reaches here fails the item
            return Outcome(
                dialogue_id=spec.dialogue_id, index=spec.index, stage="script", verdict="failed",
                reasons=[f"llm: {type(exc).__name__}: {str(exc)[:300]}"], spec=spec,
            )  # fmt: skip
        llm = {**backend.identity, "prompt_hash": prompts.content_hash, "seed": seed, "attempt": attempt}
        try:
            script = parse_reply(spec, content, llm)
        except MalformedOutput as exc:
            malformed += 1
            reasons.append(f"malformed: {exc}")
            continue
        reason = validate_script(script, rules)
        if reason is None:
            return script
        reasons.append(reason)
    verdict = "failed" if malformed == max_attempts else "rejected"
    return Outcome(
        dialogue_id=spec.dialogue_id, index=spec.index, stage="script", verdict=verdict,
        reasons=[f"script: {r}" for r in reasons], spec=spec,
    )  # fmt: skip


def write_scripts(
    specs: list[DialogueSpec],
    backend: ChatBackend,
    prompts: PromptLibrary,
    rules: ValidationRules,
    max_attempts: int,
    max_in_flight: int,
) -> tuple[list[Script], list[Outcome]]:
    with ThreadPoolExecutor(max_workers=max_in_flight) as pool:
        results = list(pool.map(lambda s: write_one(s, backend, prompts, rules, max_attempts), specs))
    scripts = [r for r in results if isinstance(r, Script)]
    outcomes = [r for r in results if isinstance(r, Outcome)]
    return scripts, outcomes
