"""Each embedded TTS with its built-in pool, side by side: DNSMOS overall, the embedded Whisper's error rate,
CPU seconds per second of audio, and whether speaker embeddings agree with each voice's gender label.

Every voice of a language renders `--per-voice` of benchmarks/voice_intelligibility.py's sentences
(neutral emotion, rotating through the list so all are used). Gender: a voice's embedding is the mean of its
clips' Resemblyzer embeddings; it agrees when it is nearer (cosine) the centroid of the other voices labelled
with its gender than the centroid of the voices labelled with the other gender (leave-one-out).

Run on demand, not in CI (a few minutes on 2 cores):
    python benchmarks/tts_quality.py [--tts espeak kokoro] [--language en zh] [--per-voice 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from empathy_data.config.model import FasterWhisperASR, KokoroSynth, SynthesizeConfig
from empathy_data.core.audio import resample
from empathy_data.core.resources import speaker_pool_path
from empathy_data.planning.speakers import load_pool
from empathy_data.stages.filter.asr import ASR_RATE, FasterWhisper
from empathy_data.stages.filter.metrics import error_rates
from empathy_data.stages.filter.mos import DNSMOS
from empathy_data.stages.filter.speaker import ResemblyzerEncoder
from empathy_data.stages.synthesize.base import TTSRequest
from empathy_data.stages.synthesize.stage import postprocess


def tts_for(name: str):
    if name == "kokoro":
        from empathy_data.stages.synthesize.kokoro import KokoroTTS

        return KokoroTTS(KokoroSynth())
    from empathy_data.stages.synthesize.espeak import EspeakTTS

    return EspeakTTS()


def gender_agreement(embeddings: dict[str, np.ndarray], genders: dict[str, str]) -> tuple[int, list[str]]:
    agreed, wrong = 0, []
    for voice, embedding in embeddings.items():
        centroids = {}
        for gender in ("female", "male"):
            others = [e for v, e in embeddings.items() if v != voice and genders[v] == gender]
            centroids[gender] = np.mean(others, axis=0) if others else None
        scores = {g: float(embedding @ c / np.linalg.norm(c)) for g, c in centroids.items() if c is not None}
        if max(scores, key=scores.get) == genders[voice]:
            agreed += 1
        else:
            wrong.append(voice)
    return agreed, wrong


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from voice_intelligibility import SENTENCES as sentences

    parser = argparse.ArgumentParser()
    parser.add_argument("--tts", nargs="+", default=["espeak", "kokoro"])
    parser.add_argument("--language", nargs="+", default=["en", "zh"])
    parser.add_argument("--per-voice", type=int, default=3)
    args = parser.parse_args()
    asr, mos, encoder, synth = FasterWhisper(FasterWhisperASR()), DNSMOS("embedded", threads=2), ResemblyzerEncoder(), SynthesizeConfig()
    print(f"{'tts':7} {'lang':4} {'voices':>6} {'clips':>5} {'DNSMOS ovrl':>11} {'err mean':>8} {'<=0.25':>7} {'cpu s / audio s':>15} {'gender agrees':>13}")
    for name in args.tts:
        tts = tts_for(name)
        pool = load_pool(speaker_pool_path("builtin", Path.cwd(), tts=name))
        for language in args.language:
            texts = sentences[language]
            voices = pool.matching(language)
            scores, errors, embeddings, cpu, audio_s, turn = [], [], {}, 0.0, 0.0, 0
            for speaker in voices:
                chosen = [texts[(turn + k) % len(texts)] for k in range(args.per_voice)]
                turn += args.per_voice
                started = time.process_time()
                rendered = tts.synthesize([TTSRequest(t, language, speaker, "neutral", None) for t in chosen])
                cpu += time.process_time() - started
                clips = [postprocess(a, tts.sample_rate, synth, 0.0) for a in rendered]
                audio_s += sum(len(c) for c in clips) / synth.sample_rate
                heard = asr.transcribe([resample(c, synth.sample_rate, ASR_RATE) for c in clips], [language] * len(clips))
                for text, hyp in zip(chosen, heard, strict=True):
                    wer, cer = error_rates(text, hyp if isinstance(hyp, str) else "", language)
                    errors.append(cer if wer is None else wer)
                scores += [r.ovrl for r in mos.score_batch([(c, synth.sample_rate) for c in clips])]
                vectors = encoder.embed_batch([(c, synth.sample_rate) for c in clips])
                mean = np.mean(vectors, axis=0)
                embeddings[speaker.id] = mean / np.linalg.norm(mean)
            agreed, wrong = gender_agreement(embeddings, {s.id: s.gender for s in voices})
            print(
                f"{name:7} {language:4} {len(voices):6d} {len(errors):5d} {statistics.mean(scores):11.2f} "
                f"{statistics.mean(errors):8.3f} {sum(e <= 0.25 for e in errors):3d}/{len(errors):<3d} "
                f"{cpu / audio_s:15.2f} {agreed:6d}/{len(voices)}" + (f"  (not: {', '.join(wrong)})" if wrong else "")
            )


if __name__ == "__main__":
    main()
