"""Choosing a speaker's reference clip for cloning TTS."""

from __future__ import annotations

from empathy_data.core.labels import STYLE_EMOTION
from empathy_data.records.schema import ReferenceClip
from empathy_data.stages.synthesize.base import TTSRequest


def target_emotion(request: TTSRequest) -> str:
    if request.emotion:
        return request.emotion
    return STYLE_EMOTION.get(request.response_style or "", "neutral")


def pick_clip(request: TTSRequest) -> ReferenceClip:
    """The first clip recorded in the target emotion, else a neutral one, else any clip."""
    clips = request.speaker.clips
    for emotion in (target_emotion(request), "neutral"):
        if clips.get(emotion):
            return clips[emotion][0]
    for options in clips.values():
        if options:
            return options[0]
    raise ValueError(f"speaker {request.speaker.id} has no reference clip for voice cloning")
