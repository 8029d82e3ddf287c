"""The filter stage: scores for every utterance, then a verdict with reasons for every exchange."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from empathy_data.config.model import Thresholds
from empathy_data.core.audio import read_audio, resample, silence_ratio
from empathy_data.core.errors import InfrastructureError, raise_if_infrastructure
from empathy_data.records.reasons import Reason, raised
from empathy_data.records.schema import Scores, Utterance
from empathy_data.stages.filter.asr import ASR_RATE, ASRBackend
from empathy_data.stages.filter.audio_judges import AudioJudges
from empathy_data.stages.filter.base import EmotionCheck, EmotionItem, EmotionResult
from empathy_data.stages.filter.metrics import error_rates


def utterance_checks(
    utt: Utterance, language: str, asr_text: str, audio_duration: float, silence: float, t: Thresholds
) -> tuple[dict[str, str], dict[str, float | None]]:
    wer, cer = error_rates(utt.text, asr_text, language)
    t = t.for_language(language)
    checks: dict[str, str] = {}
    if language == "zh":
        checks["cer"] = "pass" if cer <= t.max_cer else "fail"
    else:
        checks["wer"] = "pass" if (wer or 0.0) <= t.max_wer else "fail"
    checks["duration"] = "pass" if t.min_duration_s <= audio_duration <= t.max_duration_s else "fail"
    checks["silence"] = "pass" if silence <= t.max_silence_ratio else "fail"
    return checks, {"wer": wer, "cer": cer}


# The emotion check of an emotion its calibration did not trust: kept in the scores, never a rejection.
RECORDED_EMOTION = "emotion_recorded"


def score_utterances(
    utterances: list[Utterance],
    languages: dict[str, str],
    audio_dir: Path,
    asr: ASRBackend,
    emotion: EmotionCheck | None,
    thresholds: Thresholds,
    audio_judges: AudioJudges | None = None,
    reference_clip: Callable[[Utterance], Path | None] = lambda utt: None,
    gated: frozenset[str] | None = None,
) -> list[Scores]:
    """One Scores per utterance; an exception on one utterance marks it failed and the rest go on.
    `audio_judges`: speaker and MOS judges; `reference_clip(utt)`: the clip a cloning TTS rendered it from;
    `gated`: the emotions whose check may reject (the calibrated ones; None: all), the others' check is
    kept as `emotion_recorded`."""
    audios, loaded_errors = [], {}
    for i, utt in enumerate(utterances):
        if not (audio_dir / utt.audio_path).is_file():  # the chunk's own file is gone: not this item's fault
            raise InfrastructureError(f"audio: {audio_dir / utt.audio_path} is missing")
        try:
            audio, rate = read_audio(audio_dir / utt.audio_path)
            audios.append((audio, rate))
        except Exception as exc:
            raise_if_infrastructure(exc, f"audio {audio_dir / utt.audio_path}")
            loaded_errors[i] = exc
            audios.append(None)
    to_asr = [i for i, a in enumerate(audios) if a is not None]
    transcripts = asr.transcribe(
        [resample(audios[i][0], audios[i][1], ASR_RATE) for i in to_asr],
        [languages[utterances[i].dialogue_id] for i in to_asr],
    )
    asr_by_index = dict(zip(to_asr, transcripts, strict=True))
    emotion_of = emotion_results(utterances, audios, asr_by_index, audio_dir, emotion, thresholds)
    judged = {i: audios[i] for i in to_asr if not isinstance(asr_by_index[i], Exception)}
    audio_of = audio_judges.judge(utterances, judged, reference_clip) if audio_judges else {}
    results = []
    for i, utt in enumerate(utterances):
        base = {"dialogue_id": utt.dialogue_id, "turn_index": utt.turn_index}
        error = loaded_errors.get(i) or asr_by_index.get(i)
        if isinstance(error, Exception):
            stage = "audio" if i in loaded_errors else "asr"
            results.append(Scores(**base, verdict="failed", reasons=[raised(stage, error)]))
            continue
        if isinstance(emotion_of.get(i), Exception):
            exc = emotion_of[i]
            results.append(Scores(**base, verdict="failed", reasons=[raised("emotion", exc)]))
            continue
        verdict = audio_of.get(i)
        if verdict is not None and verdict.error:
            results.append(Scores(**base, verdict="failed", reasons=[verdict.error]))
            continue
        audio, rate = audios[i]
        language = languages[utt.dialogue_id]
        duration = len(audio) / rate
        silence = silence_ratio(audio, rate)
        checks, rates = utterance_checks(utt, language, asr_by_index[i], duration, silence, thresholds)
        fields: dict = {}
        if (result := emotion_of.get(i)) is not None:
            name = "emotion" if gated is None or utt.emotion in gated else RECORDED_EMOTION
            checks[name] = "pass" if result.passed else "fail"
            fields = {
                "emotion_pred": result.predicted,
                "emotion_prob": result.score,
                "arousal_shift": result.arousal_shift,
            }
        if verdict is not None:
            checks |= verdict.checks
            fields |= verdict.fields
        failed = [name for name, v in checks.items() if v == "fail" and name != RECORDED_EMOTION]
        results.append(
            Scores(
                **base,
                asr_text=asr_by_index[i],
                **rates,
                **fields,
                duration=round(duration, 4),
                silence_ratio=round(silence, 4),
                checks=checks,
                verdict="rejected" if failed else "accepted",
                reasons=[Reason(stage="filter", check=f"{utt.role}.{name}") for name in failed],
            )
        )
    return results


def emotion_results(
    utterances: list[Utterance],
    audios: list,
    asr_by_index: dict[int, str | Exception],
    audio_dir: Path,
    emotion: EmotionCheck | None,
    thresholds: Thresholds,
) -> dict[int, EmotionResult | Exception]:
    """The emotion check's result for every utterance that has a planned emotion and got a transcript,
    in one batched call; reading a neutral reference that fails is that utterance's failure."""
    if emotion is None or not thresholds.check_emotion:
        return {}
    index, items = [], []
    results: dict[int, EmotionResult | Exception] = {}
    for i, utt in enumerate(utterances):
        # a recording's emotion is its corpus's human label; the check is calibrated on TTS audio, not on it
        if utt.emotion is None or utt.recorded or audios[i] is None or isinstance(asr_by_index.get(i), Exception):
            continue
        try:
            reference = read_audio(audio_dir / utt.reference_audio_path)[0] if utt.reference_audio_path else None
        except Exception as exc:
            raise_if_infrastructure(exc, "emotion")
            results[i] = exc
            continue
        audio, rate = audios[i]
        index.append(i)
        items.append(EmotionItem(audio, reference, rate, utt.emotion))
    results.update(zip(index, emotion.check_batch(items), strict=True))
    return results


def exchange_verdict(user: Scores, assistant: Scores) -> tuple[str, list[Reason]]:
    """An exchange is accepted only if both of its turns are; failed beats rejected."""
    verdicts = {user.verdict, assistant.verdict}
    reasons = user.reasons + assistant.reasons
    if "failed" in verdicts:
        return "failed", reasons
    if "rejected" in verdicts:
        return "rejected", reasons
    return "accepted", []
