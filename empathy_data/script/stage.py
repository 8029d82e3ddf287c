"""The script stage: specs in, validated scripts out; every spec ends as a script or an outcome.

Each attempt sends every still-pending spec at once (threads for servers, one batch for in-process
engines); specs whose reply is malformed or fails validation go into the next attempt with a new seed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from empathy_data.config import ValidationRules
from empathy_data.hashing import digest
from empathy_data.prompt_library import PromptLibrary
from empathy_data.schema import DialogueSpec, Outcome, Script
from empathy_data.script.prompting import MalformedOutput, build_messages, parse_reply, response_schema
from empathy_data.script.validate import validate_script

Request = tuple[list[dict[str, str]], dict[str, Any], int]  # messages, JSON schema, seed


class ChatBackend(Protocol):
    @property
    def identity(self) -> dict[str, Any]: ...

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any], seed: int) -> str | None: ...


def attempt_seed(dialogue_id: str, attempt: int) -> int:
    return int(digest([dialogue_id, attempt], 8), 16) % (2**31)


def complete_many(backend: ChatBackend, requests: list[Request], max_in_flight: int) -> list[str | None | Exception]:
    """Replies in request order; an exception stands in for the reply of the request that raised it."""
    batch = getattr(backend, "complete_batch", None)
    if batch is not None:
        return batch(requests)

    def one(request: Request) -> str | None | Exception:
        try:
            return backend.complete(*request)
        except Exception as exc:  # transport retries are the client's; what reaches here fails the item
            return exc

    with ThreadPoolExecutor(max_workers=max_in_flight) as pool:
        return list(pool.map(one, requests))


def write_scripts(
    specs: list[DialogueSpec],
    backend: ChatBackend,
    prompts: PromptLibrary,
    rules: ValidationRules,
    max_attempts: int,
    max_in_flight: int,
    request_tag: bool = True,
) -> tuple[list[Script], list[Outcome]]:
    pending = list(specs)
    reasons: dict[str, list[str]] = defaultdict(list)
    malformed: Counter[str] = Counter()
    scripts: list[Script] = []
    outcomes: list[Outcome] = []
    for attempt in range(max_attempts):
        if not pending:
            break
        seeds = [attempt_seed(s.dialogue_id, attempt) for s in pending]
        requests = [
            (build_messages(s, prompts, attempt), response_schema(s), seed)
            for s, seed in zip(pending, seeds, strict=True)
        ]
        replies = complete_many(backend, requests, max_in_flight)
        retry = []
        for spec, seed, reply, (messages, _, _) in zip(pending, seeds, replies, requests, strict=True):
            if isinstance(reply, Exception):
                error = f"llm: {type(reply).__name__}: {str(reply)[:300]}"
                outcomes.append(_outcome(spec, "failed", [error]))
                continue
            llm = {**backend.identity, "prompt_hash": prompts.content_hash, "seed": seed, "attempt": attempt}
            try:
                script = parse_reply(spec, reply, llm)
            except MalformedOutput as exc:
                malformed[spec.dialogue_id] += 1
                reasons[spec.dialogue_id].append(f"malformed: {exc}")
                retry.append(spec)
                continue
            system_prompt = messages[0]["content"]
            reason = validate_script(script, rules, prompt=system_prompt)
            if reason is None:
                scripts.append(script)
            else:
                reasons[spec.dialogue_id].append(reason)
                retry.append(spec)
        pending = retry
    for spec in pending:
        verdict = "failed" if malformed[spec.dialogue_id] == max_attempts else "rejected"
        outcomes.append(_outcome(spec, verdict, [f"script: {r}" for r in reasons[spec.dialogue_id]]))
    return scripts, outcomes


def write_one(
    spec: DialogueSpec, backend: ChatBackend, prompts: PromptLibrary, rules: ValidationRules, max_attempts: int
) -> Script | Outcome:
    scripts, outcomes = write_scripts([spec], backend, prompts, rules, max_attempts, 1)
    return scripts[0] if scripts else outcomes[0]


def _outcome(spec: DialogueSpec, verdict: str, reasons: list[str]) -> Outcome:
    return Outcome(
        dialogue_id=spec.dialogue_id, index=spec.index, stage="script", verdict=verdict, reasons=reasons, spec=spec
    )
