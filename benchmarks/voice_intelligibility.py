"""How well the filter's ASR understands each voice of a speaker pool: the error rate it will see.

Renders a fixed set of empathetic-dialogue sentences with every pool voice of one language (emotion
neutral), transcribes them with the configured ASR and prints mean WER/CER and the share of
sentences under the threshold per voice. Use it to pick voice settings before a build: a voice the
ASR cannot follow turns into rejected exchanges, not into data.

Run on demand, not in CI:
    python benchmarks/voice_intelligibility.py --language zh [--pool POOL.yaml] [--threshold 0.25]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from empathy_data.config.model import FasterWhisperASR, SynthesizeConfig
from empathy_data.core.audio import resample
from empathy_data.core.resources import builtin_dir
from empathy_data.planning.speakers import load_pool
from empathy_data.stages.filter.asr import ASR_RATE, FasterWhisper
from empathy_data.stages.filter.metrics import error_rates
from empathy_data.stages.synthesize.base import TTSRequest
from empathy_data.stages.synthesize.espeak import EspeakTTS
from empathy_data.stages.synthesize.stage import postprocess

SENTENCES = {
    "en": [
        "I have been under so much pressure at work lately that I can barely sleep.",
        "That sounds exhausting. Do you want to tell me what has been happening?",
        "I failed my exam today and I feel completely useless.",
        "Please don't say that. One exam does not decide who you are.",
        "My dog of ten years passed away yesterday and I miss him so much.",
        "Losing a friend who was with you for so long must really hurt.",
        "I finally got the job I have been dreaming about!",
        "Congratulations, that is the result of all your hard work.",
    ],
    "zh": [
        "我最近工作压力很大，每天都睡不好觉。",
        "听起来你真的很辛苦，能和我说说发生了什么吗？",
        "今天考试考砸了，我觉得自己好没用。",
        "别这么说，一次考试不能决定你的全部。",
        "我养了十年的小狗昨天走了，我好难过。",
        "失去陪伴这么久的朋友，一定让你很心痛。",
        "太好了，我终于拿到了梦想中的工作！",
        "恭喜你！这是你努力的结果，真为你高兴。",
        "邻居家每天晚上都很吵，我快受不了了。",
        "换作是我也会生气，我们一起想想办法吧。",
        "明天就要去医院做检查了，我有点害怕。",
        "担心是很正常的，我会一直陪着你。",
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--language", default="zh", choices=sorted(SENTENCES))
    parser.add_argument("--pool", type=Path, default=builtin_dir("empathy_data.speaker_pool") / "espeak.yaml")
    parser.add_argument("--threshold", type=float, default=0.25)
    parser.add_argument("--beam-size", type=int, default=1)
    args = parser.parse_args()

    speakers = load_pool(args.pool).matching(args.language)
    texts = SENTENCES[args.language]
    tts, synth = EspeakTTS(), SynthesizeConfig()
    asr = FasterWhisper(FasterWhisperASR(beam_size=args.beam_size))
    started = time.perf_counter()
    overall = []
    print(f"{'voice':34} {'mean err':>8} {'pass':>6}")
    for speaker in speakers:
        requests = [TTSRequest(t, args.language, speaker, "neutral", None) for t in texts]
        audio = [postprocess(a, tts.sample_rate, synth, 0.0) for a in tts.synthesize(requests)]
        hyps = asr.transcribe([resample(a, synth.sample_rate, ASR_RATE) for a in audio], [args.language] * len(texts))
        errors = []
        for text, hyp in zip(texts, hyps, strict=True):
            wer, cer = error_rates(text, hyp if isinstance(hyp, str) else "", args.language)
            errors.append(cer if wer is None else wer)
        passed = sum(e <= args.threshold for e in errors)
        overall.extend(errors)
        print(f"{speaker.id:34} {statistics.mean(errors):8.3f} {passed:3d}/{len(errors)}")
    passed = sum(e <= args.threshold for e in overall)
    print(
        f"all {len(speakers)} voices: mean error {statistics.mean(overall):.3f}, "
        f"{passed}/{len(overall)} utterances <= {args.threshold} ({time.perf_counter() - started:.0f} s)"
    )


if __name__ == "__main__":
    main()
