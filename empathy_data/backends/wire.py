"""What travels between a build and a service: JSON bodies, audio as base64 float32 (bit-exact)."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

from empathy_data.records.schema import Speaker
from empathy_data.stages.filter.base import EmotionItem, EmotionResult
from empathy_data.stages.synthesize.base import TTSRequest

# A service's answer for an item that failed on its content (not an infrastructure fault).
ITEM_ERROR = "error"


def encode_audio(audio: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(audio, dtype="<f4").tobytes()).decode("ascii")


def decode_audio(data: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(data), dtype="<f4").astype(np.float32)


def tts_request_to_json(request: TTSRequest) -> dict[str, Any]:
    return {
        "text": request.text,
        "language": request.language,
        "speaker": request.speaker.model_dump(mode="json"),
        "emotion": request.emotion,
        "response_style": request.response_style,
        "seed": request.seed,
    }


def tts_request_from_json(data: dict[str, Any]) -> TTSRequest:
    return TTSRequest(
        text=data["text"],
        language=data["language"],
        speaker=Speaker.model_validate(data["speaker"]),
        emotion=data.get("emotion"),
        response_style=data.get("response_style"),
        seed=int(data.get("seed", 0)),
    )


def wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    """A float32 WAV file: any OpenAI-compatible transcription server decodes it to the same samples."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.asarray(audio, dtype=np.float32), rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    import soundfile as sf

    audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    if audio.ndim > 1:
        audio = audio.mean(axis=1).astype(np.float32)
    return audio, int(rate)


def emotion_item_to_json(item: EmotionItem) -> dict[str, Any]:
    reference = None if item.reference is None else encode_audio(item.reference)
    return {
        "audio": encode_audio(item.audio),
        "reference": reference,
        "sample_rate": item.sample_rate,
        "emotion": item.emotion,
    }


def emotion_item_from_json(data: dict[str, Any]) -> EmotionItem:
    reference = data.get("reference")
    return EmotionItem(
        audio=decode_audio(data["audio"]),
        reference=None if reference is None else decode_audio(reference),
        sample_rate=int(data["sample_rate"]),
        emotion=str(data["emotion"]),
    )


def emotion_result_to_json(result: EmotionResult) -> dict[str, Any]:
    return {
        "passed": result.passed,
        "score": result.score,
        "arousal_shift": result.arousal_shift,
        "predicted": result.predicted,
    }


def emotion_result_from_json(data: dict[str, Any]) -> EmotionResult:
    return EmotionResult(
        passed=bool(data["passed"]), score=float(data["score"]),
        arousal_shift=data.get("arousal_shift"), predicted=data.get("predicted"),
    )  # fmt: skip
