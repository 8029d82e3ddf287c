"""The filter's audio judges beyond ASR and emotion: speaker embeddings (one role keeps its voice across
the dialogue, user and assistant sound apart, a cloned turn sounds like its reference clip) and MOS.
Every model call is one batch over the chunk's utterances; a clip that raises fails only its utterance."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from empathy_data.config.model import FilterConfig
from empathy_data.core.audio import read_audio
from empathy_data.core.errors import raise_if_infrastructure
from empathy_data.records.reasons import Reason, raised
from empathy_data.records.schema import Utterance
from empathy_data.stages.filter.speaker import (
    SpeakerEncoder,
    reference_similarity,
    role_consistency,
    voice_distinctness,
)

Clip = tuple[np.ndarray, int]


@dataclass
class AudioVerdict:
    fields: dict[str, float | None] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)
    error: Reason | None = None  # the judge raised: the utterance failed (not a verdict on it)

    def fail(self, judge: str, exc: Exception) -> None:
        """A clip the judge cannot use (silent, no speech, too short: ValueError) fails its check, a
        rejection like any other; anything else is an error on the item ('failed', looked at again)."""
        if isinstance(exc, ValueError):
            self.checks[judge] = "fail"
        else:
            self.error = self.error or raised(judge, exc)


@dataclass
class AudioJudges:
    config: FilterConfig
    speaker: SpeakerEncoder | None = None
    mos: Any | None = None  # filter.mos.DNSMOS

    def judge(
        self,
        utterances: list[Utterance],
        clips: dict[int, Clip],
        reference_clip: Callable[[Utterance], Path | None],
    ) -> dict[int, AudioVerdict]:
        """A verdict for every utterance in `clips` (index -> loaded audio).
        `reference_clip(utt)`: the speaker's reference recording a cloning TTS rendered it from, or None."""
        results = {i: AudioVerdict() for i in clips}
        if self.speaker is not None and self.config.speaker.enabled:
            self._speakers(utterances, clips, reference_clip, results)
        if self.mos is not None and self.config.mos is not None:
            self._mos(clips, results)
        return results

    def _speakers(self, utterances, clips, reference_clip, results) -> None:
        cfg = self.config.speaker
        order = sorted(clips)
        references: dict[Path, Clip | Exception] = {}
        clip_path = {i: reference_clip(utterances[i]) for i in order}
        for path in clip_path.values():
            if path is not None and path not in references:
                try:
                    references[path] = read_audio(path)
                except Exception as exc:
                    raise_if_infrastructure(exc, f"speaker reference {path}")
                    references[path] = exc
        loaded_refs = [p for p, clip in references.items() if not isinstance(clip, Exception)]
        vectors = self.speaker.embed_batch([clips[i] for i in order] + [references[p] for p in loaded_refs])
        embedding = dict(zip(order, vectors[: len(order)], strict=True))
        ref_embedding = dict(zip(loaded_refs, vectors[len(order) :], strict=True))
        by_dialogue: dict[str, list[int]] = defaultdict(list)
        for i in order:
            if isinstance(embedding[i], Exception):
                results[i].fail("speaker", embedding[i])
            else:
                by_dialogue[utterances[i].dialogue_id].append(i)
        for indices in by_dialogue.values():
            roles = [utterances[i].role for i in indices]
            vectors_ = [embedding[i] for i in indices]
            distinct = voice_distinctness(vectors_, roles)
            for i, consistency in zip(indices, role_consistency(vectors_, roles), strict=True):
                verdict = results[i]
                verdict.fields["speaker_consistency"] = _round(consistency)
                if consistency is not None:
                    verdict.checks["speaker"] = "pass" if consistency >= cfg.min_consistency else "fail"
                if utterances[i].role == "assistant" and distinct is not None:
                    verdict.fields["voice_similarity"] = _round(distinct)
                    if cfg.max_user_assistant_similarity is not None:
                        verdict.checks["voice_distinct"] = "pass" if distinct <= cfg.max_user_assistant_similarity else "fail"
                path = clip_path[i]
                if path is None:
                    continue
                reference = references[path] if isinstance(references[path], Exception) else ref_embedding[path]
                if isinstance(reference, Exception):  # the pool clip is unreadable or has no voice to compare
                    verdict.fail("reference", reference)
                    continue
                similarity = reference_similarity(embedding[i], ref_embedding[path])
                verdict.fields["speaker_similarity"] = _round(similarity)
                if cfg.min_reference_similarity is not None:
                    verdict.checks["reference"] = "pass" if similarity >= cfg.min_reference_similarity else "fail"

    def _mos(self, clips, results) -> None:
        order = [i for i in sorted(clips) if results[i].error is None]
        if not order:
            return
        minimum = self.config.mos.min_mos
        for i, scored in zip(order, self.mos.score_batch([clips[i] for i in order]), strict=True):
            if isinstance(scored, Exception):
                results[i].fail("mos", scored)
                continue
            results[i].fields["mos"] = _round(scored.ovrl)
            if minimum is not None:
                results[i].checks["mos"] = "pass" if scored.ovrl >= minimum else "fail"


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)
