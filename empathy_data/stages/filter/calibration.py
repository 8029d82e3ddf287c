"""How often the emotion check is right on the audio this build's TTS makes, measured before it gates.

Speech-emotion checks read emotion badly from synthesized speech, so a build does not trust its check
on faith: it renders a fixed probe set (neutral-content sentences x the configured emotions x voices of
the pool, fixed seeds) with the configured TTS exactly as the synthesize stage renders a turn, asks the
configured check whether each clip sounds like each emotion, and keeps the pass rates as a matrix:
`matrix[rendered][checked]`. An emotion's recall is how often the check passes a clip rendered in it;
its precision, how many of the clips the check passes as it were rendered in it (every emotion has the
same number of clips). The filter gates only the emotions whose recall and precision reach the
configured floors and records the check for the rest (runtime/calibration.py caches the result).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from empathy_data.config.model import SynthesizeConfig
from empathy_data.core.hashing import digest
from empathy_data.records.schema import Speaker
from empathy_data.stages.filter.base import EmotionCheck, EmotionItem, EmotionResult
from empathy_data.stages.synthesize.base import TTSBackend, TTSRequest
from empathy_data.stages.synthesize.prosody import prosody_for
from empathy_data.stages.synthesize.stage import postprocess, render_dialogues

# Bump when the probe set or the way it is measured changes: it is part of the filter stage's key.
PROBE_VERSION = 1
# Sentences whose words carry no emotion, so a check that passes them is hearing the voice.
SENTENCES = {
    "en": [
        "I went to the station this morning and took the train into town.",
        "The meeting is on Thursday at three, in the room next to the kitchen.",
        "My brother called me yesterday and we talked about the weekend.",
        "There is a new shop on the corner that sells bread and coffee.",
    ],
    "zh": [
        "我今天早上去了车站，坐火车进了城。",
        "会议在星期四下午三点，在厨房旁边的房间。",
        "我哥哥昨天给我打了电话，我们聊了聊周末。",
        "街角新开了一家卖面包和咖啡的店。",
    ],
}


@dataclass(frozen=True)
class Probe:
    text: str
    language: str
    speaker: Speaker
    emotion: str
    seed: int


def probe_set(
    languages: list[str], emotions: list[str], speakers_of: Callable[[str, str], tuple[Speaker, ...]],
    sentences: int, voices: int,
) -> list[Probe]:  # fmt: skip
    """`sentences` x `voices` x each emotion, per language; voices alternate female and male (the pool's
    first ones of each gender for the language), so the matrix is not one voice's."""
    probes = []
    for language in languages:
        texts = SENTENCES.get(language, SENTENCES["en"])[:sentences]
        by_gender = [speakers_of(language, gender) for gender in ("female", "male")]
        chosen: list[Speaker] = []
        for k in range(max((len(g) for g in by_gender), default=0)):
            chosen += [g[k] for g in by_gender if k < len(g)]
        for speaker in chosen[:voices]:
            for text in texts:
                for emotion in emotions:
                    seed = int(digest(["calibration", PROBE_VERSION, language, speaker.id, text, emotion], 8), 16)
                    probes.append(Probe(text, language, speaker, emotion, seed % 2**31))
    return probes


def render_probes(
    probes: list[Probe], tts: TTSBackend, config: SynthesizeConfig, resolve: Callable[[Speaker], Speaker]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each probe's clip and the same text rendered neutral, post-processed as the synthesize stage does."""
    dialogues = [
        [TTSRequest(p.text, p.language, resolve(p.speaker), p.emotion, None, p.seed),
         TTSRequest(p.text, p.language, resolve(p.speaker), "neutral", None, p.seed)]
        for p in probes
    ]  # fmt: skip
    clips = []
    for probe, rendered in zip(probes, render_dialogues(tts, dialogues), strict=True):
        errors = [r for r in rendered if isinstance(r, Exception)]
        if errors:
            raise RuntimeError(f"calibration: the TTS could not render a probe ({probe.speaker.id}, {probe.emotion}): {errors[0]}")
        gain = prosody_for(probe.emotion, None).gain_db
        clips.append((postprocess(rendered[0], tts.sample_rate, config, gain), postprocess(rendered[1], tts.sample_rate, config, 0.0)))
    return clips


@dataclass(frozen=True)
class Calibration:
    """Pass rates of the emotion check on probe clips: `matrix[rendered][checked]`."""

    emotions: list[str]
    matrix: dict[str, dict[str, float]]
    clips: int  # per rendered emotion
    identity: dict[str, Any]

    def recall(self, emotion: str) -> float:
        return self.matrix[emotion][emotion]

    def precision(self, emotion: str) -> float:
        passed = sum(self.matrix[rendered][emotion] for rendered in self.emotions)
        return self.matrix[emotion][emotion] / passed if passed else 0.0

    def gated(self, min_recall: float, min_precision: float) -> list[str]:
        return [e for e in self.emotions if self.recall(e) >= min_recall and self.precision(e) >= min_precision]

    def to_json(self) -> dict[str, Any]:
        return {"emotions": self.emotions, "matrix": self.matrix, "clips": self.clips, "identity": self.identity}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        return cls(list(data["emotions"]), data["matrix"], int(data["clips"]), data["identity"])


def measure(
    probes: list[Probe], clips: list[tuple[np.ndarray, np.ndarray]], check: EmotionCheck, sample_rate: int,
    emotions: list[str], identity: dict[str, Any],
) -> Calibration:  # fmt: skip
    """Every clip checked against every emotion, in one batch."""
    items = [
        EmotionItem(audio, reference, sample_rate, target)
        for (audio, reference) in clips
        for target in emotions
    ]
    results = check.check_batch(items)
    passed: dict[str, dict[str, int]] = {r: dict.fromkeys(emotions, 0) for r in emotions}
    count = dict.fromkeys(emotions, 0)
    for i, probe in enumerate(probes):
        count[probe.emotion] += 1
        for j, target in enumerate(emotions):
            result = results[i * len(emotions) + j]
            if isinstance(result, Exception):
                raise RuntimeError(f"calibration: the emotion check failed on a probe ({probe.speaker.id}): {result}")
            passed[probe.emotion][target] += bool(isinstance(result, EmotionResult) and result.passed)
    matrix = {r: {t: round(passed[r][t] / count[r], 4) if count[r] else 0.0 for t in emotions} for r in emotions}
    return Calibration(list(emotions), matrix, min(count.values(), default=0), identity)
