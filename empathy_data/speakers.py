"""Speaker pools: load and validate a pool YAML, and draw speakers by gender and age group."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from empathy_data.errors import ConfigError
from empathy_data.schema import ReferenceClip, Speaker


@dataclass(frozen=True)
class SpeakerPool:
    path: Path
    speakers: tuple[Speaker, ...]

    def matching(self, language: str, gender: str | None = None, age_group: str | None = None) -> list[Speaker]:
        return [
            s
            for s in self.speakers
            if s.language == language
            and (gender is None or s.gender == gender)
            and (age_group is None or s.age_group == age_group)
        ]

    def draw_user(self, rng: random.Random, language: str, gender: str, age_group: str) -> Speaker:
        candidates = self.matching(language, gender, age_group) or self.matching(language, gender)
        if not candidates:
            raise ConfigError(f"{self.path}", f"no {language} speaker of gender {gender!r}")
        return rng.choice(candidates)

    def draw_assistant(self, rng: random.Random, language: str, user: Speaker) -> Speaker:
        """An adult voice (else any voice) other than the user's: the two sides never share a voice."""
        others = [s for s in self.matching(language) if s.id != user.id]
        adults = [s for s in others if s.age_group in ("young_adult", "adult")]
        if not others:
            raise ConfigError(f"{self.path}", f"needs at least two {language} speakers (user and assistant voices)")
        return rng.choice(adults or others)


def check_clip(path: Path, where: str) -> None:
    """A reference clip must be audio that soundfile can open, with frames in it."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:
        raise ConfigError(where, f"unreadable or unsupported audio {path} ({str(exc).splitlines()[0][:80]})") from None
    if info.frames == 0:
        raise ConfigError(where, f"empty audio {path}")


def load_pool(path: Path) -> SpeakerPool:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(str(path), f"cannot read speaker pool ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("speakers"), list) or not data["speakers"]:
        raise ConfigError(str(path), "expected a mapping with a non-empty 'speakers' list")
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
        resolved: dict[str, list[ReferenceClip]] = {}
        for emotion, clips in speaker.clips.items():
            resolved[emotion] = []
            for j, clip in enumerate(clips):
                clip_path = (path.parent / clip.path).resolve()
                if not clip_path.is_relative_to(path.parent.resolve()):
                    raise ConfigError(
                        f"{path}: speakers[{i}].clips.{emotion}[{j}]", "clip path leaves the pool directory"
                    )
                where = f"{path}: speakers[{i}].clips.{emotion}[{j}]"
                if not clip_path.is_file():
                    raise ConfigError(where, f"missing file {clip_path}")
                check_clip(clip_path, where)
                resolved[emotion].append(ReferenceClip(path=str(clip_path), transcript=clip.transcript))
        # Backends get absolute clip paths; the pool file may be read from any working directory.
        speakers.append(speaker.model_copy(update={"clips": resolved}) if resolved else speaker)
    return SpeakerPool(path=path, speakers=tuple(speakers))
