"""Speed of the embedded TTS, ASR and emotion check, as real-time factors (audio seconds per wall second).

Run on demand, not in CI:  python benchmarks/stage_speed.py [--utterances 40]
Ratios, not absolute times, are what to compare between machines and commits.
"""

from __future__ import annotations

import argparse
import time

from empathy_data.config.model import FasterWhisperASR, ProsodyEmotion, SynthesizeConfig
from empathy_data.core.audio import resample
from empathy_data.core.resources import builtin_dir
from empathy_data.planning.speakers import load_pool
from empathy_data.stages.filter.asr import FasterWhisper
from empathy_data.stages.filter.prosody import ProsodyEmotionCheck
from empathy_data.stages.synthesize.base import TTSRequest
from empathy_data.stages.synthesize.espeak import EspeakTTS
from empathy_data.stages.synthesize.prosody import EMOTION_PROSODY
from empathy_data.stages.synthesize.stage import postprocess

TEXTS = [
    "I just found out that my flight was cancelled and I have no idea how I will get home tonight.",
    "Oh no, that sounds really stressful. Let's look at the options together, one step at a time.",
    "My dog learned a new trick today and I could not stop laughing for ten minutes.",
    "That is wonderful, it sounds like the two of you had a lovely afternoon.",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--utterances", type=int, default=40)
    args = parser.parse_args()
    pool = load_pool(builtin_dir("empathy_data.speaker_pool") / "espeak.yaml")
    speakers = pool.matching("en")
    emotions = list(EMOTION_PROSODY)
    requests = [
        TTSRequest(TEXTS[i % len(TEXTS)], "en", speakers[i % len(speakers)], emotions[i % len(emotions)], None)
        for i in range(args.utterances)
    ]
    tts, config = EspeakTTS(), SynthesizeConfig()
    t0 = time.perf_counter()
    raw = [tts.synthesize([r])[0] for r in requests]
    audio = [postprocess(a, tts.sample_rate, config, 0.0) for a in raw]
    tts_s = time.perf_counter() - t0
    seconds = sum(len(a) for a in audio) / config.sample_rate

    asr = FasterWhisper(FasterWhisperASR())
    t0 = time.perf_counter()
    asr.transcribe([resample(a, config.sample_rate, 16000) for a in audio], ["en"] * len(audio))
    asr_s = time.perf_counter() - t0

    check = ProsodyEmotionCheck(ProsodyEmotion())
    t0 = time.perf_counter()
    for a in audio:
        check.check(a, a, config.sample_rate, "neutral")
    emo_s = time.perf_counter() - t0

    print(f"{len(audio)} utterances, {seconds:.1f} s of audio")
    for name, wall in (("tts espeak", tts_s), ("asr whisper-base int8", asr_s), ("emotion prosody (x2 audio)", emo_s)):
        print(f"{name:28s} {seconds / wall:8.1f}x real time ({wall:.2f} s)")


if __name__ == "__main__":
    main()
