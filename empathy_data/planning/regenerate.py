"""Regeneration rounds: which dialogues to write again, and which version of each one the corpus keeps.

A version is what one round made of a dialogue, read from that round's filter chunk: either exchange
rows (it reached the filter) or an outcome (it stopped at the script or synthesize stage).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from empathy_data.planning.plan import Planner
from empathy_data.records.chunk_records import ChunkRecords
from empathy_data.records.schema import DialogueSpec, Script
from empathy_data.store.work_layout import STAGES, WorkLayout

log = logging.getLogger("empathy_data")


@dataclass(frozen=True)
class Version:
    round: int
    planned: int  # exchanges the spec asks for
    accepted: int  # exchanges the filter accepted
    failed: bool  # an error (not a rejection) ended it somewhere

    @property
    def complete(self) -> bool:
        return self.accepted == self.planned


def versions_in_round(filter_chunk: ChunkRecords, round_: int) -> dict[str, Version]:
    """What round `round_` made of each dialogue, from its filter chunk."""
    found = {
        o.dialogue_id: Version(round_, o.spec.num_exchanges, 0, o.verdict == "failed") for o in filter_chunk.outcomes
    }
    by_dialogue: dict[str, list[str]] = {}
    for exchange in filter_chunk.exchanges:
        by_dialogue.setdefault(exchange.dialogue_id, []).append(exchange.verdict)
    for dialogue_id, verdicts in by_dialogue.items():
        found[dialogue_id] = Version(round_, len(verdicts), verdicts.count("accepted"), "failed" in verdicts)
    return found


def best(versions: list[Version]) -> Version:
    """Most accepted exchanges; on a tie the earliest round, so a later round never replaces for nothing."""
    return min(versions, key=lambda v: (-v.accepted, v.round))


def needs_another_round(versions: list[Version]) -> bool:
    return not any(v.failed for v in versions) and not best(versions).complete


def merge(rounds: list[dict[str, Version]]) -> dict[str, list[Version]]:
    """Round-by-round versions -> every version of each dialogue, oldest first."""
    merged: dict[str, list[Version]] = {}
    for found in rounds:
        for dialogue_id, version in found.items():
            merged.setdefault(dialogue_id, []).append(version)
    return merged


@dataclass
class Regeneration:
    """A build's rounds read from its chunk outputs: what each round writes, what it goes on from, and
    which chunk outputs a re-run must make again because an error (not a verdict) ended items in them."""

    layout: WorkLayout
    planner: Planner

    @property
    def rounds(self) -> range:
        return self.layout.rounds

    def round_specs(self, chunk_index: int, round_: int) -> list[DialogueSpec]:
        """The specs round `round_` writes: all of the chunk in round 0, later only those whose best
        version so far still has a rejected exchange (read from the earlier rounds' filter chunks)."""
        specs = self.planner.chunk(chunk_index)
        if round_ == 0:
            return specs
        merged = merge([self.versions(chunk_index, r) for r in range(round_)])
        again = {d for d, versions in merged.items() if needs_another_round(versions)}
        # a contrast group is not written again: a rewritten member would no longer share its group's words
        return [s for s in specs if s.dialogue_id in again and s.contrast is None]

    def drafts(self, chunk_index: int, round_: int) -> dict[str, Script]:
        """The exchanges each dialogue that stalled in the previous round's script stage had passed:
        round `round_` goes on from them. (A dialogue the filter rejected starts over: its written
        exchanges may be the ones the audio failed on.)"""
        if round_ == 0:
            return {}
        outcomes = self.layout.read_chunk("script", chunk_index, round_ - 1).outcomes
        return {o.dialogue_id: o.draft for o in outcomes if o.draft is not None}

    def versions(self, chunk_index: int, round_: int) -> dict[str, Version]:
        if not self.layout.is_done("filter", chunk_index, round_):
            where = self.layout.store.where(self.layout.chunk_key("filter", chunk_index, round_))
            raise RuntimeError(f"{where}: round {round_} of chunk {chunk_index} has not been filtered yet")
        return versions_in_round(self.layout.read_chunk("filter", chunk_index, round_), round_)

    def pending_script_work(self) -> bool:
        """Whether some script chunk still needs the LLM. A round after one that wrote nothing has
        nothing to write either; a round whose predecessor is unfiltered might."""
        done = self.layout.is_done
        for c in self.layout.chunks():
            if not done("script", c, 0):
                return True
            for r in self.rounds[1:]:
                if not done("filter", c, r - 1):
                    return True
                if not self.round_specs(c, r):
                    break
                if not done("script", c, r):
                    return True
        return False

    def own_failures(self, stage: str, chunk_index: int, round_: int) -> int:
        """Items of a finished chunk output that this stage itself failed with an exception. A script
        that failed only on malformed replies is not counted: its replies would come back from the
        journal unchanged, so trying it again could not end differently."""
        records = self.layout.read_chunk(stage, chunk_index, round_)
        judged = [*records.exchanges, *(o for o in records.outcomes if o.stage == stage)]
        return sum(
            item.verdict == "failed" and any(reason.is_exception for reason in item.reasons)
            for item in judged
        )

    def reopen_failed_chunks(self) -> int:
        """`failed` means an error happened, not a verdict: a re-run tries those items again. The chunk
        output holding them is removed with everything computed from it (later stages and rounds);
        replies already received come back from the journal, so only the failed items cost new work."""
        reopened = 0
        for c in self.layout.chunks():
            found = next(
                ((r, i) for r in self.rounds for i, stage in enumerate(STAGES)
                 if self.layout.is_done(stage, c, r) and self.own_failures(stage, c, r)),
                None,
            )  # fmt: skip
            if found is None:
                continue
            first_round, first_stage = found
            for r in self.rounds[first_round:]:
                for stage in STAGES[first_stage if r == first_round else 0 :]:
                    self.layout.store.remove_output(self.layout.chunk_key(stage, c, r))
            log.info("chunk %d: %s output with failed items will be retried", c + 1, STAGES[first_stage])
            reopened += 1
        return reopened
