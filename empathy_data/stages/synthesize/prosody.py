"""Emotion prosody for parametric TTS.

Directions follow the acoustic correlates summarised by Murray & Arnott (1993, "Toward the simulation
of emotion in synthetic speech", JASA 93(2)) and Schröder (2001, "Emotional speech synthesis: a review",
Eurospeech): anger and happiness raise rate, pitch, range and intensity; fear raises rate and pitch most;
sadness lowers all four; disgust slows speech and lowers pitch; surprise widens range and raises pitch.
Values are offsets on espeak-ng's scales (pitch and range 0-100, rate in words per minute) plus a
loudness offset in dB applied after normalisation. Magnitudes are ours, tuned by ear on espeak-ng.
"""

from dataclasses import dataclass

from empathy_data.core.labels import STYLE_EMOTION


@dataclass(frozen=True)
class Prosody:
    rate_scale: float = 1.0
    pitch_offset: int = 0
    range_offset: int = 0
    gain_db: float = 0.0


EMOTION_PROSODY: dict[str, Prosody] = {
    "neutral": Prosody(),
    "happy": Prosody(rate_scale=1.12, pitch_offset=12, range_offset=25, gain_db=2.0),
    "angry": Prosody(rate_scale=1.18, pitch_offset=8, range_offset=30, gain_db=4.0),
    "fearful": Prosody(rate_scale=1.25, pitch_offset=18, range_offset=15, gain_db=1.0),
    "surprised": Prosody(rate_scale=1.08, pitch_offset=15, range_offset=35, gain_db=2.0),
    "sad": Prosody(rate_scale=0.80, pitch_offset=-12, range_offset=-30, gain_db=-4.0),
    "disgusted": Prosody(rate_scale=0.85, pitch_offset=-10, range_offset=-10, gain_db=-2.0),
}


def prosody_for(emotion: str | None, response_style: str | None) -> Prosody:
    if emotion is None and response_style is not None:
        emotion = STYLE_EMOTION[response_style]
    return EMOTION_PROSODY[emotion or "neutral"]
