"""The synthesize stage: scripts in, utterance records and FLAC files out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from empathy_data.config.model import SynthesizeConfig
from empathy_data.core.audio import normalise_loudness, read_audio, resample, trim_silence, write_flac
from empathy_data.core.errors import InfrastructureError
from empathy_data.core.hashing import digest
from empathy_data.records.reasons import Reason, raised
from empathy_data.records.schema import RECORDING, RealQuery, Script, Speaker, Utterance
from empathy_data.stages.synthesize.base import TTSBackend, TTSRequest
from empathy_data.stages.synthesize.prosody import prosody_for


@dataclass(frozen=True)
class SynthFailure:
    script: Script
    error: Reason


def _as_is(speaker: Speaker) -> Speaker:
    return speaker


def turn_requests(script: Script, resolve: Callable[[Speaker], Speaker] = _as_is) -> list[TTSRequest]:
    """`resolve` turns a spec's pool-relative clip paths into paths a backend can open."""
    spec = script.spec
    requests = []
    # a script that stopped short (`unwritten`) renders the turns it has
    for i, (plan, turn) in enumerate(zip(spec.turns[: len(script.turns)], script.turns, strict=True)):
        speaker = resolve(spec.user if plan.role == "user" else spec.assistant_voice)
        seed = int(digest([spec.dialogue_id, i, script.llm.get("seed")], 8), 16) % 2**31
        requests.append(TTSRequest(turn.text, spec.language, speaker, plan.emotion, plan.response_style, seed))
    return requests


def with_neutral_references(requests: list[TTSRequest]) -> list[TTSRequest]:
    """The turns, then each emotional turn again in the voice's neutral prosody (for the emotion check)."""
    neutral = [TTSRequest(r.text, r.language, r.speaker, "neutral", None, r.seed) for r in requests if r.emotion is not None]
    return requests + neutral


def render_dialogues(backend: TTSBackend, dialogues: list[list[TTSRequest]]) -> Iterator[list[np.ndarray | Exception]]:
    """Each dialogue's audio in order; a service backend keeps several dialogues in flight at once (so its
    batches fill from this chunk and others), an in-process one renders them one by one."""
    many = getattr(backend, "synthesize_many", None)
    if many is not None:
        return many(dialogues)
    return (backend.synthesize(requests) for requests in dialogues)


def postprocess(audio: np.ndarray, source_rate: int, config: SynthesizeConfig, gain_db: float) -> np.ndarray:
    audio = trim_silence(audio, source_rate, top_db=config.trim_db)
    audio = resample(audio, source_rate, config.sample_rate)
    return normalise_loudness(audio, config.target_dbfs + gain_db)


def synthesize_scripts(
    scripts: list[Script],
    backend: TTSBackend,
    config: SynthesizeConfig,
    audio_dir: Path,
    neutral_reference: bool,
    resolve: Callable[[Speaker], Speaker] = _as_is,
    recording: Callable[[RealQuery], Path] | None = None,
) -> tuple[list[Utterance], list[SynthFailure]]:
    """Render every turn; a dialogue with any failed turn fails as a whole (its audio would be incomplete).
    A recorded query's user turn is its recording (`recording(query)`: the clip's path), not rendered."""
    utterances: list[Utterance] = []
    failures: list[SynthFailure] = []
    turns = [turn_requests(script, resolve) for script in scripts]
    given = [int(script.spec.real_query is not None) for script in scripts]  # leading turns not rendered
    to_render = [requests[g:] for requests, g in zip(turns, given, strict=True)]
    wanted = [with_neutral_references(r) if neutral_reference else r for r in to_render]
    for script, requests, g, rendered in zip(scripts, turns, given, render_dialogues(backend, wanted), strict=True):
        errors = [r for r in rendered if isinstance(r, Exception)]
        if errors:
            failures.append(SynthFailure(script, raised("tts", errors[0])))
            continue
        sources = [(audio, backend.sample_rate) for audio in rendered[: len(requests) - g]]
        if g:
            query = script.spec.real_query
            assert query is not None and recording is not None, "a recorded query needs recording="
            path = recording(query)
            if not path.is_file():  # the ingested directory changed under the build: not this item's fault
                raise InfrastructureError(f"recording: {path} is missing")
            try:
                sources.insert(0, read_audio(path))
            except Exception as exc:
                failures.append(SynthFailure(script, raised("recording", exc)))
                continue
        neutral = iter(rendered[len(requests) - g :])
        records = []
        for turn_index, (request, (audio, rate)) in enumerate(zip(requests, sources, strict=True)):
            recorded = turn_index < g
            gain = 0.0 if recorded else prosody_for(request.emotion, request.response_style).gain_db
            audio = postprocess(audio, rate, config, gain)
            name = f"{script.spec.dialogue_id}-{turn_index}"
            write_flac(audio_dir / f"{name}.flac", audio, config.sample_rate)
            reference = None
            if neutral_reference and request.emotion is not None and not recorded:
                ref_audio = postprocess(next(neutral), backend.sample_rate, config, 0.0)
                reference = f"{name}.neutral.flac"
                write_flac(audio_dir / reference, ref_audio, config.sample_rate)
            records.append(
                Utterance(
                    dialogue_id=script.spec.dialogue_id,
                    turn_index=turn_index,
                    role=script.turns[turn_index].role,
                    text=request.text,
                    speaker_id=request.speaker.id,
                    emotion=request.emotion,
                    response_style=request.response_style,
                    audio_path=f"{name}.flac",
                    reference_audio_path=reference,
                    sample_rate=config.sample_rate,
                    duration=round(len(audio) / config.sample_rate, 4),
                    tts=recording_identity(script.spec.real_query) if recorded else backend.identity,  # type: ignore[arg-type]
                )
            )
        utterances.extend(records)
    return utterances, failures


def recording_identity(query: RealQuery) -> dict[str, str]:
    """An utterance's `tts` when it is a recording (Utterance.recorded)."""
    return {"backend": RECORDING, "corpus": query.corpus, "query": query.id}
