"""Speaker pools: load and validate a pool YAML, and draw speakers by gender and age group."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from empathy_data.core.errors import ConfigError
from empathy_data.core.hashing import file_sha256
from empathy_data.records.schema import ReferenceClip, Speaker


@dataclass(frozen=True)
class SpeakerPool:
    path: Path
    speakers: tuple[Speaker, ...]
    _matches: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)
    _assistants: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def resolve(self, speaker: Speaker) -> Speaker:
        """The speaker with absolute clip paths under this pool's current location, for TTS backends."""
        if not speaker.clips:
            return speaker
        root = self.path.parent.resolve()
        clips = {
            emotion: [c.model_copy(update={"path": str(root / c.path)}) for c in clips]
            for emotion, clips in speaker.clips.items()
        }
        return speaker.model_copy(update={"clips": clips})

    def matching(self, language: str, gender: str | None = None, age_group: str | None = None) -> tuple[Speaker, ...]:
        key = (language, gender, age_group)
        if (found := self._matches.get(key)) is None:  # asked once per planned dialogue: keep the answers
            found = self._matches[key] = tuple(
                s
                for s in self.speakers
                if s.language == language
                and (gender is None or s.gender == gender)
                and (age_group is None or s.age_group == age_group)
            )
        return found

    def draw_user(self, rng: random.Random, language: str, gender: str, age_group: str) -> Speaker:
        candidates = self.matching(language, gender, age_group) or self.matching(language, gender)
        if not candidates:
            raise ConfigError(f"{self.path}", f"no {language} speaker of gender {gender!r}")
        return rng.choice(candidates)

    def draw_assistant(self, rng: random.Random, language: str, user: Speaker) -> Speaker:
        """An adult voice (else any voice) other than the user's: the two sides never share a voice."""
        key = (language, user.id)
        if (found := self._assistants.get(key)) is None:
            others = [s for s in self.matching(language) if s.id != user.id]
            adults = [s for s in others if s.age_group in ("young_adult", "adult")]
            found = self._assistants[key] = tuple(adults or others)
        if not found:
            raise ConfigError(f"{self.path}", f"needs at least two {language} speakers (user and assistant voices)")
        return rng.choice(found)


# A reference clip a cloning TTS can condition on: long enough to carry a voice, short enough for the
# models' prompt windows (CosyVoice2/XTTS take up to ~30 s, and quality drops past ~15 s).
MIN_CLIP_SECONDS, MAX_CLIP_SECONDS, MIN_CLIP_RATE, SILENT_PEAK = 3.0, 15.0, 16000, 10 ** (-40 / 20)


def clip_problem(path: Path, min_seconds: float = MIN_CLIP_SECONDS, max_seconds: float = MAX_CLIP_SECONDS) -> str | None:
    """What is wrong with a clip (decodes, min-max seconds: 3-15 s for a reference clip, >= 16 kHz, not
    silent), or None."""
    import numpy as np
    import soundfile as sf

    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        return f"{path}: does not decode ({str(exc).splitlines()[0][:80]})"
    if len(audio) == 0:
        return f"{path}: empty audio"
    seconds = len(audio) / rate
    if not min_seconds <= seconds <= max_seconds:
        return f"{path}: {seconds:.1f} s, outside {min_seconds:g}-{max_seconds:g} s"
    if rate < MIN_CLIP_RATE:
        return f"{path}: sample rate {rate} Hz below {MIN_CLIP_RATE}"
    if float(np.max(np.abs(audio))) < SILENT_PEAK:
        return f"{path}: silent (peak below -40 dBFS)"
    return None


def load_pool(path: Path) -> SpeakerPool:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(str(path), f"cannot read speaker pool ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("speakers"), list) or not data["speakers"]:
        raise ConfigError(str(path), "expected a mapping with a non-empty 'speakers' list")
    root = path.parent.resolve()
    defaults = {k: data[k] for k in ("source", "licence") if k in data}
    speakers = []
    seen: set[str] = set()
    for i, entry in enumerate(data["speakers"]):
        try:
            speaker = Speaker.model_validate({**defaults, **entry})
        except (ValidationError, TypeError) as exc:
            detail = exc.errors()[0] if isinstance(exc, ValidationError) else {"loc": (), "msg": str(exc)}
            field = ".".join(str(p) for p in detail["loc"])
            raise ConfigError(f"{path}: speakers[{i}].{field}", detail["msg"]) from None
        if speaker.id in seen:
            raise ConfigError(f"{path}: speakers[{i}].id", f"duplicate speaker id {speaker.id!r}")
        seen.add(speaker.id)
        checked: dict[str, list[ReferenceClip]] = {}
        for emotion, clips in speaker.clips.items():
            checked[emotion] = []
            for j, clip in enumerate(clips):
                where = f"{path}: speakers[{i}].clips.{emotion}[{j}]"
                clip_path = (root / clip.path).resolve()
                if not clip_path.is_relative_to(root):
                    raise ConfigError(where, "clip path leaves the pool directory")
                if not clip_path.is_file():
                    raise ConfigError(where, f"missing file {clip_path}")
                if problem := clip_problem(clip_path):
                    raise ConfigError(where, problem)
                # Pool-relative path and content hash: the plan key survives moving the pool and
                # notices a clip edited in place.
                relative = clip_path.relative_to(root).as_posix()
                checked[emotion].append(ReferenceClip(path=relative, transcript=clip.transcript, sha256=file_sha256(clip_path)))
        speakers.append(speaker.model_copy(update={"clips": checked}) if checked else speaker)
    return SpeakerPool(path=path, speakers=tuple(speakers))
