"""The script stage: specs in, validated scripts out; every spec ends as a script or an outcome.

Each round sends every still-pending request at once (threads for servers, one batch for in-process
engines); a reply that is malformed or fails validation is asked for again with a new seed.
A dialogue is written in one request (`write_by: dialogue`) or one exchange per request
(`write_by: exchange`): then each exchange is validated together with the ones before it, and only
the failing exchange is asked for again. `write_by: auto` (the default) writes dialogues of
`exchange_mode_from` exchanges or more exchange by exchange, shorter ones whole. A dialogue written
by exchange that stalls keeps the exchanges it had passed as a draft; given back (`drafts`), the next
round goes on from there.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from empathy_data.config.model import ValidationRules
from empathy_data.core.errors import InfrastructureError, is_infrastructure, raise_if_infrastructure
from empathy_data.core.hashing import digest
from empathy_data.planning.prompt_library import PromptLibrary
from empathy_data.records.reasons import Reason, raised
from empathy_data.records.schema import DialogueSpec, Outcome, Script, ScriptTurn
from empathy_data.stages.script.journal import ReplyJournal, Request
from empathy_data.stages.script.judge import Review, ScriptJudges, add_checks
from empathy_data.stages.script.prompting import CutOff, MalformedOutput, build_messages, parse_reply, response_schema
from empathy_data.stages.script.validate import validate_script


class ChatBackend(Protocol):
    @property
    def identity(self) -> dict[str, Any]: ...

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any], seed: int) -> str | None: ...


def attempt_seed(dialogue_id: str, attempt: int, exchange: int | None = None) -> int:
    key: list = [dialogue_id, attempt] if exchange is None else [dialogue_id, exchange, attempt]
    return int(digest(key, 8), 16) % (2**31)


class NotSent(Exception):
    """Stands in for a request skipped because an earlier one hit an infrastructure fault."""


class StoppedByFault(InfrastructureError):
    """A pipelined dialogue's request not sent because another dialogue's request hit an infrastructure fault."""


def _send(backend: ChatBackend, requests: list[Request], max_in_flight: int, on_reply) -> list[str | None | Exception]:
    """Replies in request order; an exception stands in for the reply of the request that raised it.
    After an infrastructure fault no further request is sent (the server is gone or unusable)."""
    batch = getattr(backend, "complete_batch", None)
    if batch is not None:
        try:
            return batch(requests, on_reply)  # journals each part as it finishes
        except Exception as exc:  # the engine itself failed (an item's own error comes back in its slot)
            raise InfrastructureError(f"llm: {type(exc).__name__}: {str(exc)[:300]}") from exc
    broken = threading.Event()

    def one(i: int) -> str | None | Exception:
        if broken.is_set():
            return NotSent()
        try:
            reply = backend.complete(*requests[i])
        except Exception as exc:  # transport retries are the client's; what reaches here is classified
            if is_infrastructure(exc):
                broken.set()
            return exc
        on_reply(i, reply)
        return reply

    with ThreadPoolExecutor(max_workers=max_in_flight) as pool:
        return list(pool.map(one, range(len(requests))))


def complete_many(
    backend: ChatBackend,
    requests: list[Request],
    max_in_flight: int,
    journal: ReplyJournal | None = None,
    labels: list[dict[str, Any]] | None = None,
) -> list[str | None | Exception]:
    """Replies in request order. Journaled requests are answered from the journal; the rest are sent,
    and each reply is journaled as it arrives. An infrastructure fault raises InfrastructureError
    (after every reply that did arrive is journaled); an item's own error stands in for its reply."""
    if journal is None:
        replies = _send(backend, requests, max_in_flight, lambda i, reply: None)
    else:
        keys = [journal.key(backend.identity, r) for r in requests]
        replies: list[str | None | Exception] = [None] * len(requests)
        todo = []
        for i, key in enumerate(keys):
            found, reply = journal.lookup(key)
            if found:
                replies[i] = reply
            else:
                todo.append(i)
        label_of = labels or [{} for _ in requests]

        def record(j: int, reply: str | None) -> None:
            i = todo[j]
            journal.append(keys[i], reply, requests[i][2], label_of[i])

        sent = _send(backend, [requests[i] for i in todo], max_in_flight, record)
        for i, reply in zip(todo, sent, strict=True):
            replies[i] = reply
    faults = [r for r in replies if isinstance(r, Exception) and not isinstance(r, NotSent) and is_infrastructure(r)]
    if faults:
        raise_if_infrastructure(faults[0], "llm")
    return replies


@dataclass(frozen=True)
class ScriptRun:
    """What every request of one script stage run shares."""

    backend: ChatBackend
    prompts: PromptLibrary
    rules: ValidationRules
    max_attempts: int
    max_in_flight: int
    request_tag: bool = True
    write_by: str = "dialogue"  # or "exchange", or "auto": by exchange from exchange_mode_from exchanges on
    exchange_mode_from: int = 3
    first_attempt: int = 0  # attempt numbers (and so seeds) start here: regeneration rounds ask anew
    # A dialogue written by exchange that stalls keeps the exchanges it had passed as a script that stops
    # short (its last chance: no later round goes on from a draft); otherwise it ends as an outcome whose
    # draft the next round goes on from.
    keep_stalled: bool = False
    journal: ReplyJournal | None = None
    judges: ScriptJudges | None = None
    stop: threading.Event | None = None  # pipelined: set by the first infrastructure fault of any dialogue

    @property
    def attempts(self) -> range:
        return range(self.first_attempt, self.first_attempt + self.max_attempts)

    def complete(self, backend: ChatBackend, requests: list[Request], labels: list[dict[str, Any]]) -> list:
        if self.stop is not None and self.stop.is_set():
            raise StoppedByFault("llm: not sent: another request of this chunk hit an infrastructure fault")
        try:
            return complete_many(backend, requests, self.max_in_flight, self.journal, labels)
        except InfrastructureError:
            if self.stop is not None:
                self.stop.set()
            raise

    def review(self, scripts: list[Script], attempts: list[int]) -> list[Review]:
        """The judges' verdicts on scripts that passed validation (all pass when there are no judges)."""
        if self.judges is None or not scripts:
            return [Review(None) for _ in scripts]
        judge_chat = self.judges.chat

        def complete(requests: list[Request], labels: list[dict[str, Any]]) -> list:
            return self.complete(judge_chat, requests, labels)

        return self.judges.review(scripts, attempts, complete)


def write_scripts(
    specs: list[DialogueSpec], run: ScriptRun, drafts: dict[str, Script] | None = None
) -> tuple[list[Script], list[Outcome]]:
    """`drafts`: for some dialogues, the exchanges an earlier round had passed (used by exchange only).
    `run.judges`: topic and LLM judges that review each script once it passes validation.
    Contrast groups: the first members are written with the other dialogues, then the other members get
    their group's words and write only their replies; a group whose words were not written rejects them."""
    waiting = [s for s in specs if s.awaits_group_text]
    if waiting:
        scripts, outcomes = write_scripts([s for s in specs if not s.awaits_group_text], run, drafts)
        words = {s.spec.contrast.group_id: s.turns[0].text for s in scripts if s.spec.contrast is not None}
        ready = [with_group_words(s, words[s.contrast.group_id]) for s in waiting if s.contrast.group_id in words]  # type: ignore[union-attr]
        unwritten = Reason(stage="script", check="contrast", detail="the group's words were not written")
        outcomes += [_outcome(s, "rejected", [unwritten]) for s in waiting if s.contrast.group_id not in words]  # type: ignore[union-attr]
        more_scripts, more_outcomes = write_scripts(ready, run, drafts) if ready else ([], [])
        return scripts + more_scripts, outcomes + more_outcomes
    write_by, exchange_mode_from = run.write_by, run.exchange_mode_from

    def write(group: list[DialogueSpec], run: ScriptRun) -> tuple[list[Script], list[Outcome]]:
        if write_by == "auto":
            whole = [s for s in group if s.num_exchanges < exchange_mode_from]
            parts = [s for s in group if s.num_exchanges >= exchange_mode_from]
            scripts, outcomes = write_by_dialogue(whole, run) if whole else ([], [])
            if parts:
                more_scripts, more_outcomes = write_by_exchange(parts, run, drafts)
                scripts, outcomes = scripts + more_scripts, outcomes + more_outcomes
            return scripts, outcomes
        return write_by_exchange(group, run, drafts) if write_by == "exchange" else write_by_dialogue(group, run)

    if pipelines(run, specs):
        return write_pipelined(specs, run, write)
    return write(specs, run)


def with_group_words(spec: DialogueSpec, words: str) -> DialogueSpec:
    return spec.model_copy(update={"contrast": spec.contrast.model_copy(update={"user_text": words})})  # type: ignore[union-attr]


def pipelines(run: ScriptRun, specs: list[DialogueSpec]) -> bool:
    """Servers answer requests one by one, so each dialogue can go at its own pace; an in-process engine
    (`complete_batch`) is fastest given a whole round at once."""
    chats = [run.backend] + ([run.judges.chat] if run.judges is not None and run.judges.chat is not None else [])
    batched = any(getattr(chat, "complete_batch", None) is not None for chat in chats)
    return run.max_in_flight > 1 and len(specs) > 1 and not batched


def write_pipelined(
    specs: list[DialogueSpec],
    run: ScriptRun,
    write: Callable[[list[DialogueSpec], ScriptRun], tuple[list[Script], list[Outcome]]],
) -> tuple[list[Script], list[Outcome]]:
    """Each dialogue runs its own write -> validate -> judge loop, `max_in_flight` dialogues at once, so
    one dialogue's judge request is in flight beside others' writer requests and no round waits for its
    slowest reply. A dialogue's requests depend only on its own replies, so every request, reply and
    verdict is the one the round-by-round order gives; only the order they reach the server changes.
    The first infrastructure fault stops every dialogue from sending more, and is raised."""
    stop = threading.Event()
    one = replace(run, max_in_flight=1, stop=stop)
    with ThreadPoolExecutor(max_workers=run.max_in_flight, thread_name_prefix="script") as pool:
        futures = [pool.submit(write, [spec], one) for spec in specs]
        wait(futures)
    errors = [f.exception() for f in futures if f.exception() is not None]
    first = next((e for e in errors if not isinstance(e, StoppedByFault)), errors[0] if errors else None)
    if first is not None:
        raise first
    scripts: list[Script] = []
    outcomes: list[Outcome] = []
    for future in futures:
        more_scripts, more_outcomes = future.result()
        scripts += more_scripts
        outcomes += more_outcomes
    return scripts, outcomes


def write_by_dialogue(specs: list[DialogueSpec], run: ScriptRun) -> tuple[list[Script], list[Outcome]]:
    backend, prompts, rules, max_attempts = run.backend, run.prompts, run.rules, run.max_attempts
    pending = list(specs)
    reasons: dict[str, list[Reason]] = defaultdict(list)
    checks: dict[str, dict[str, list[int]]] = defaultdict(dict)
    malformed: Counter[str] = Counter()
    scripts: list[Script] = []
    outcomes: list[Outcome] = []
    for attempt in run.attempts:
        if not pending:
            break
        seeds = [attempt_seed(s.dialogue_id, attempt) for s in pending]
        requests = [
            (build_messages(s, prompts, attempt, tag=run.request_tag), response_schema(s), seed)
            for s, seed in zip(pending, seeds, strict=True)
        ]
        labels = [{"dialogue_id": s.dialogue_id, "attempt": attempt} for s in pending]
        replies = run.complete(backend, requests, labels)
        retry, valid = [], []
        for spec, seed, reply, (messages, _, _) in zip(pending, seeds, replies, requests, strict=True):
            if isinstance(reply, Exception):
                outcomes.append(_outcome(spec, "failed", [raised("llm", reply, 300)], checks=checks[spec.dialogue_id]))
                continue
            llm = {**backend.identity, "prompt_hash": prompts.content_hash, "seed": seed, "attempt": attempt}
            try:
                script = parse_reply(spec, reply, llm)
            except CutOff as exc:  # the budget's fault, not the model's format: a rejection
                reasons[spec.dialogue_id].append(Reason(stage="script", check="cut_off", detail=str(exc)))
                retry.append(spec)
                continue
            except MalformedOutput as exc:
                malformed[spec.dialogue_id] += 1
                reasons[spec.dialogue_id].append(Reason(stage="script", check="malformed", detail=str(exc)))
                retry.append(spec)
                continue
            system_prompt = messages[0]["content"]
            reason = validate_script(script, rules, prompt=system_prompt)
            checks[spec.dialogue_id] = add_checks(checks[spec.dialogue_id], {"validation": [reason is None, reason is not None]})
            if reason is None:
                valid.append(script)
            else:
                reasons[spec.dialogue_id].append(reason)
                retry.append(spec)
        for script, review in zip(valid, run.review(valid, [attempt] * len(valid)), strict=True):
            dialogue_id = script.spec.dialogue_id
            checks[dialogue_id] = add_checks(checks[dialogue_id], review.checks)
            if review.error is not None:
                outcomes.append(_outcome(script.spec, "failed", [review.error], checks=checks[dialogue_id]))
            elif review.reason is None:
                scripts.append(script.model_copy(update={"quality": review.quality, "checks": checks[dialogue_id]}))
            else:
                reasons[dialogue_id].append(review.reason)
                retry.append(script.spec)
        pending = sorted(retry, key=lambda s: s.index)
    for spec in pending:
        verdict = "failed" if malformed[spec.dialogue_id] == max_attempts else "rejected"
        outcomes.append(_outcome(spec, verdict, reasons[spec.dialogue_id], checks=checks[spec.dialogue_id]))
    return scripts, outcomes


@dataclass
class Draft:
    """A dialogue being written one exchange at a time."""

    spec: DialogueSpec
    exchanges: list[dict[str, str]] = field(default_factory=list)  # accepted so far: user, reasoning, assistant
    attempt: int = 0  # attempts at the current exchange
    attempts: list[int] = field(default_factory=list)  # attempts each accepted exchange took
    seeds: list[int] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)
    malformed: int = 0
    checks: dict[str, list[int]] = field(default_factory=dict)  # check -> [passed, failed], all attempts
    quality: dict[str, Any] = field(default_factory=dict)  # the judges' view of the last accepted exchange

    @property
    def current(self) -> int:
        return len(self.exchanges)

    def script(self, extra: list[dict[str, str]], llm: dict[str, Any]) -> Script:
        done = self.exchanges + extra
        turns = [ScriptTurn(role=role, text=ex[role]) for ex in done for role in ("user", "assistant")]
        reasoning = [ex["reasoning"] for ex in done]
        return Script(spec=self.spec, turns=turns, reasoning=reasoning, llm=llm, quality=self.quality, checks=self.checks)

    @classmethod
    def resume(cls, spec: DialogueSpec, attempt: int, written: Script | None) -> Draft:
        """A draft that goes on from the exchanges `written` holds (an earlier round's stalled draft)."""
        if written is None or not written.reasoning or len(written.reasoning) >= spec.num_exchanges:
            return cls(spec, attempt=attempt)
        texts = [t.text for t in written.turns]
        exchanges = [
            {"user": texts[2 * k], "assistant": texts[2 * k + 1], "reasoning": note}
            for k, note in enumerate(written.reasoning)
        ]
        return cls(
            spec,
            exchanges=exchanges,
            attempt=attempt,
            attempts=list(written.llm.get("attempt", [])),
            seeds=list(written.llm.get("seed", [])),
        )


def write_by_exchange(
    specs: list[DialogueSpec], run: ScriptRun, drafts: dict[str, Script] | None = None
) -> tuple[list[Script], list[Outcome]]:
    """Each exchange gets up to `max_attempts` requests; a dialogue whose exchange spends them all ends
    rejected (failed when every reply for it was malformed), with every reason it collected and, as its
    draft, the exchanges it had passed; with `run.keep_stalled`, those exchanges go on as a script that
    stops short, its `unwritten` reasons saying why the rest is missing."""
    backend, prompts = run.backend, run.prompts
    drafts = drafts or {}
    pending = [Draft.resume(spec, run.first_attempt, drafts.get(spec.dialogue_id)) for spec in specs]
    scripts: list[Script] = []
    outcomes: list[Outcome] = []
    while pending:
        requests: list[Request] = []
        for d in pending:
            seed = attempt_seed(d.spec.dialogue_id, d.attempt, d.current)
            messages = build_messages(d.spec, prompts, d.attempt, tag=run.request_tag, written=d.exchanges)
            requests.append((messages, response_schema(d.spec, num_exchanges=1), seed))
        labels = [{"dialogue_id": d.spec.dialogue_id, "exchange": d.current, "attempt": d.attempt} for d in pending]
        replies = run.complete(backend, requests, labels)
        still: list[Draft] = []
        reasons: dict[int, Reason] = {}  # position in pending -> why its exchange is asked for again
        valid: list[tuple[int, list[dict[str, str]], dict[str, Any], int, Script]] = []
        for j, (d, reply, (messages, _, seed)) in enumerate(zip(pending, replies, requests, strict=True)):
            if isinstance(reply, Exception):
                outcomes.append(_outcome(d.spec, "failed", [*d.reasons, raised("llm", reply, 300)], checks=d.checks))
                continue
            llm = {**backend.identity, "prompt_hash": prompts.content_hash, "write_by": "exchange"}
            try:
                new = parse_reply(d.spec, reply, llm, num_exchanges=1)
            except CutOff as exc:
                reasons[j] = Reason(stage="script", check="cut_off", detail=str(exc), exchange=d.current)
                continue
            except MalformedOutput as exc:
                d.malformed += 1
                reasons[j] = Reason(stage="script", check="malformed", detail=str(exc), exchange=d.current)
                continue
            extra = [{"user": new.turns[0].text, "assistant": new.turns[1].text, "reasoning": new.reasoning[0]}]
            candidate = d.script(extra, llm)
            failed = validate_script(candidate, run.rules, prompt=messages[0]["content"])
            d.checks = add_checks(d.checks, {"validation": [failed is None, failed is not None]})
            if failed is None:
                valid.append((j, extra, llm, seed, candidate))
            else:
                reasons[j] = failed.model_copy(update={"exchange": d.current})
        reviews = run.review([c for *_, c in valid], [pending[j].attempt for j, *_ in valid])
        for (j, extra, llm, seed, _), review in zip(valid, reviews, strict=True):
            d = pending[j]
            d.checks = add_checks(d.checks, review.checks)
            if review.error is not None:
                outcomes.append(_outcome(d.spec, "failed", [*d.reasons, review.error], checks=d.checks))
                continue
            if review.reason is not None:
                reasons[j] = review.reason.model_copy(update={"exchange": d.current})
                continue
            d.exchanges += extra
            d.attempts.append(d.attempt)
            d.seeds.append(seed)
            d.quality = review.quality
            d.attempt = run.first_attempt
            if d.current == d.spec.num_exchanges:
                scripts.append(d.script([], {**llm, "seed": d.seeds, "attempt": d.attempts}))
            else:
                still.append(d)
        for j, reason in sorted(reasons.items()):
            d = pending[j]
            d.reasons.append(reason)
            d.attempt += 1
            if d.attempt in run.attempts:
                still.append(d)
                continue
            verdict = "failed" if d.malformed == len(d.reasons) and not d.exchanges else "rejected"
            llm = {**backend.identity, "prompt_hash": prompts.content_hash, "write_by": "exchange"}
            draft = d.script([], {**llm, "seed": d.seeds, "attempt": d.attempts}) if d.exchanges else None
            if draft is not None and run.keep_stalled:
                scripts.append(draft.model_copy(update={"unwritten": d.reasons}))
                continue
            outcomes.append(_outcome(d.spec, verdict, d.reasons, draft, d.checks))
        pending = sorted(still, key=lambda d: d.spec.index)
    return scripts, outcomes


def write_one(
    spec: DialogueSpec, backend: ChatBackend, prompts: PromptLibrary, rules: ValidationRules, max_attempts: int
) -> Script | Outcome:
    scripts, outcomes = write_scripts([spec], ScriptRun(backend, prompts, rules, max_attempts, 1))
    return scripts[0] if scripts else outcomes[0]


def _outcome(
    spec: DialogueSpec, verdict: str, reasons: list[Reason], draft: Script | None = None,
    checks: dict[str, list[int]] | None = None,
) -> Outcome:
    return Outcome(
        dialogue_id=spec.dialogue_id,
        index=spec.index,
        stage="script",
        verdict=verdict,
        reasons=reasons,
        spec=spec,
        draft=draft,
        checks=checks or {},
    )
