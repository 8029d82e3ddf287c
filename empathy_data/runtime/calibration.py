"""The emotion check's calibration for a build: measured once per (TTS, emotion check, probe set) and kept.

The driver computes it before any chunk task runs (or finds it) and writes it into the build's store
(`work/calibration/<key>.json`), so filter tasks on any worker read the same matrix; a copy goes to the
user's cache (`~/.cache/empathy-data/calibration/`), so the next build with the same TTS and check does
not render the probes again. What the matrix means: stages/filter/calibration.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empathy_data.backends import registry
from empathy_data.core.atomic import atomic_path
from empathy_data.core.hashing import digest
from empathy_data.core.labels import EMOTIONS
from empathy_data.runtime.per_context import PerContext
from empathy_data.stages.filter.calibration import PROBE_VERSION, Calibration, measure, probe_set, render_probes
from empathy_data.weights.embedded_models import cache_dir

if TYPE_CHECKING:
    from empathy_data.runtime.build import BuildContext



def probes_of(ctx: BuildContext):
    gate = ctx.config.filter.emotion
    pool = ctx.planner.pool
    return probe_set(
        sorted(ctx.config.languages), list(EMOTIONS), lambda lang, gender: pool.matching(lang, gender),
        gate.calibration_sentences, gate.calibration_voices,
    )  # fmt: skip


def calibration_identity(ctx: BuildContext, probes) -> dict[str, Any]:
    """Everything the matrix depends on: the TTS and check as their stage keys see them, and the probes."""
    config = ctx.config
    emotion_key, libraries = registry.key_of("emotion", config.filter.emotion)
    return {
        "probe": PROBE_VERSION,
        "synthesize": registry.synthesize_identity(config.synthesize),
        "emotion": emotion_key,
        "emotion_libraries": registry.library_versions(*libraries),
        "probes": digest([[p.text, p.language, p.speaker.model_dump(mode="json"), p.emotion, p.seed] for p in probes]),
    }


def store_key(identity: dict[str, Any]) -> str:
    return f"work/calibration/{digest(identity, 16)}.json"


def ensure_calibration(ctx: BuildContext, in_store: bool = True) -> Calibration | None:
    """The build's calibration: from its store, else the user's cache, else measured now. None when the
    config does not calibrate (no emotion check, or both floors null). `in_store` False (the `calibrate`
    command): the build's output directory is neither read nor written. Found once per context: every
    filter chunk asks, and finding it builds the probe set and asks a TTS service for its identity."""
    emotion = ctx.config.filter.emotion
    if not ctx.config.filter.thresholds.check_emotion or not emotion.calibrated:
        return None
    return _found.get(ctx, lambda: _find_or_measure(ctx, in_store), in_store)


_found = PerContext()


def _find_or_measure(ctx: BuildContext, in_store: bool) -> Calibration:
    probes = probes_of(ctx)
    identity = calibration_identity(ctx, probes)
    key = store_key(identity)
    if in_store and ctx.store.exists(key):
        return Calibration.from_json(ctx.store.read_json(key))
    cached = cache_dir() / "calibration" / Path(key).name
    if cached.is_file():
        calibration = Calibration.from_json(json.loads(cached.read_text()))
    else:
        tts = registry.tts_backend(ctx.config.synthesize)
        check = registry.emotion_backend(ctx.config.filter)
        clips = render_probes(probes, tts, ctx.config.synthesize, ctx.planner.pool.resolve)
        calibration = measure(probes, clips, check, ctx.config.synthesize.sample_rate, list(EMOTIONS), identity)
        cached.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached) as tmp:
            tmp.write_text(json.dumps(calibration.to_json(), indent=1))
    if in_store:
        ctx.store.write_json(key, calibration.to_json())
    return calibration


def gated_emotions(ctx: BuildContext, in_store: bool = True) -> frozenset[str] | None:
    """The emotions the check gates in this build; None: all of them (no calibration)."""
    calibration = ensure_calibration(ctx, in_store)
    return None if calibration is None else gated_by(ctx, calibration)


def gated_by(ctx: BuildContext, calibration: Calibration) -> frozenset[str]:
    gate = ctx.config.filter.emotion
    return frozenset(calibration.gated(gate.min_recall or 0.0, gate.min_precision or 0.0))


def summary(ctx: BuildContext, in_store: bool = True) -> dict[str, Any]:
    """What the manifest, card and report show: the matrix, each emotion's recall and precision, and
    which emotions gated. Empty when the build does not calibrate."""
    calibration = ensure_calibration(ctx, in_store)
    if calibration is None:
        return {}
    gated = gated_by(ctx, calibration)
    return {
        "emotions": calibration.emotions,
        "matrix": calibration.matrix,
        "clips_per_emotion": calibration.clips,
        "recall": {e: round(calibration.recall(e), 4) for e in calibration.emotions},
        "precision": {e: round(calibration.precision(e), 4) for e in calibration.emotions},
        "gated": sorted(gated),
        "min_recall": ctx.config.filter.emotion.min_recall,
        "min_precision": ctx.config.filter.emotion.min_precision,
    }
