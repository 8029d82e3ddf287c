"""Exchange rows of the exported dataset: the contract with every consumer (see docs/architecture.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from empathy_data.config.model import JUDGE_CRITERIA
from empathy_data.core.labels import STYLE_EMOTION
from empathy_data.records.schema import Scores, Script, Utterance

if TYPE_CHECKING:
    from datasets import Features

QUALITY_FIELDS = (
    "user_wer", "user_cer", "assistant_wer", "assistant_cer", "user_emotion_score",
    "user_arousal_shift", "user_duration", "assistant_duration",
    # script judges (per dialogue): LLM judge scores 1-5, scenario-dialogue embedding similarity
    "judge_emotion", "judge_style", "judge_topic", "judge_reasoning", "judge_naturalness", "topic_similarity",
    # audio judges (per turn): speaker embeddings and MOS
    "user_speaker_consistency", "assistant_speaker_consistency", "user_speaker_similarity",
    "assistant_speaker_similarity", "voice_similarity", "user_mos", "assistant_mos",
)  # fmt: skip
PROVENANCE_FIELDS = (
    "build_name", "plan_seed", "plan_index", "llm_model", "llm_seed", "prompt_hash", "tts_backend", "asr_backend",
    "regeneration_round",
)  # fmt: skip


def features(sample_rate: int, with_audio: bool = True, with_verdict: bool = False) -> Features:
    from datasets import Audio, Features, List, Value  # on use: `datasets` takes ~0.9 s to import

    text = Value("string")
    cols: dict[str, Any] = {
        "dialogue_id": text,
        "exchange_index": Value("int32"),
        "split": text,
        # "real": the user turn is an ingested recording (config.ingest); "synthetic": written and rendered
        "source": text,
        # the contrast group the row belongs to (config.contrast): its members share the user's words
        "group_id": text,
        "language": text,
        "scenario": text,
        "history": List({"role": text, "text": text}),
        # False when an earlier exchange of the dialogue was turned down by the filter (see export.unclean_history)
        "history_clean": Value("bool"),
        "user_text": text,
        "user_emotion": text,
        "user_speaker_id": text,
        "user_gender": text,
        "user_age_group": text,
        "assistant_text": text,
        "assistant_style": text,
        "assistant_emotion": text,
        "assistant_speaker_id": text,
        "reasoning": text,
        "quality": {**{name: Value("float32") for name in QUALITY_FIELDS}, **{name: text for name in JUDGE_TEXT_FIELDS}},
        "provenance": {name: text for name in PROVENANCE_FIELDS},
    }
    if with_audio:
        cols["user_audio"] = Audio(sampling_rate=sample_rate)
        cols["assistant_audio"] = Audio(sampling_rate=sample_rate)
    if with_verdict:
        cols["verdict"] = text
        cols["stage"] = text
        cols["reasons"] = List(text)
    return Features(cols)


# the judge's words on the row: its rationale (scores mode), and its closed-set picks for this exchange (labels
# mode): how the user sounds and the reply's style, read without the plan
JUDGE_TEXT_FIELDS = ("judge_rationale", "judge_user_emotion", "judge_assistant_style")


def script_quality(script: Script, exchange_index: int) -> dict[str, Any]:
    """The script judges' figures for the row: judge scores, their rationales as one line, the closed-set
    judge's picks for this exchange, topic similarity."""
    judged = script.quality.get("judge") or {}
    picks = script.quality.get("judge_labels") or []
    pick = picks[exchange_index] if exchange_index < len(picks) else {}
    return {
        **{f"judge_{c}": judged.get(c) for c in JUDGE_CRITERIA},
        "judge_rationale": judged.get("why"),
        "judge_user_emotion": pick.get("emotion"),
        "judge_assistant_style": pick.get("style"),
        "topic_similarity": script.quality.get("topic_similarity"),
    }


def exchange_row(
    script: Script,
    exchange_index: int,
    split: str,
    scores: tuple[Scores, Scores] | None,
    utterances: tuple[Utterance, Utterance] | None,
    build: dict[str, Any],
) -> dict[str, Any]:
    spec = script.spec
    u, a = 2 * exchange_index, 2 * exchange_index + 1
    style = spec.turns[a].response_style
    us, as_ = scores if scores else (None, None)
    quality = {
        "user_wer": us and us.wer,
        "user_cer": us and us.cer,
        "assistant_wer": as_ and as_.wer,
        "assistant_cer": as_ and as_.cer,
        "user_emotion_score": us and us.emotion_prob,
        "user_arousal_shift": us and us.arousal_shift,
        "user_duration": us and us.duration,
        "assistant_duration": as_ and as_.duration,
        **script_quality(script, exchange_index),
        "user_speaker_consistency": us and us.speaker_consistency,
        "assistant_speaker_consistency": as_ and as_.speaker_consistency,
        "user_speaker_similarity": us and us.speaker_similarity,
        "assistant_speaker_similarity": as_ and as_.speaker_similarity,
        "voice_similarity": as_ and as_.voice_similarity,
        "user_mos": us and us.mos,
        "assistant_mos": as_ and as_.mos,
    }
    return {
        "dialogue_id": spec.dialogue_id,
        "exchange_index": exchange_index,
        "split": split,
        "source": spec.source,
        "group_id": spec.contrast.group_id if spec.contrast is not None else None,
        "language": spec.language,
        "scenario": spec.scenario,
        "history": [t.to_dict() for t in script.turns[:u]],
        "user_text": script.turns[u].text,
        "user_emotion": spec.turns[u].emotion,
        "user_speaker_id": spec.user.id,
        "user_gender": spec.user.gender,
        "user_age_group": spec.user.age_group,
        "assistant_text": script.turns[a].text,
        "assistant_style": style,
        "assistant_emotion": STYLE_EMOTION.get(style or "", None),
        "assistant_speaker_id": spec.assistant_voice.id,
        "reasoning": script.reasoning[exchange_index],
        "quality": quality,
        "provenance": {
            "build_name": build["name"],
            "plan_seed": str(build["seed"]),
            "plan_index": str(spec.index),
            "llm_model": str(script.llm.get("model")),
            "llm_seed": str(script.llm.get("seed")),
            "prompt_hash": str(script.llm.get("prompt_hash")),
            "tts_backend": str(utterances[1].tts.get("backend")) if utterances else None,  # the reply's: a user turn may be a recording
            "asr_backend": build.get("asr_backend"),
            "regeneration_round": str(build.get("round", 0)),
        },
    }
