"""espeak-ng through the shared library in `espeakng-loader` (no system package needed)."""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import numpy as np

from empathy_data.errors import BackendUnavailable
from empathy_data.synthesize.base import TTSRequest
from empathy_data.synthesize.prosody import prosody_for

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000
CHARS_UTF8 = 1
POS_CHARACTER = 1
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE = 1, 2, 3, 4
LANGUAGE_VOICES = {"en": "en-us", "zh": "cmn"}

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
# libespeak-ng keeps one global synthesiser per process.
_LOCK = threading.Lock()
_LIB: ctypes.CDLL | None = None
_RATE = 0
_CHUNKS: list[np.ndarray] = []


@_CALLBACK
def _collect(wav, numsamples, events):  # noqa: ARG001
    if numsamples > 0:
        _CHUNKS.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
    return 0


def _library() -> tuple[ctypes.CDLL, int]:
    global _LIB, _RATE
    if _LIB is None:
        try:
            import espeakng_loader
        except ImportError:
            raise BackendUnavailable("espeak backend needs espeakng-loader: pip install espeakng-loader") from None
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        rate = lib.espeak_Initialize(
            AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise BackendUnavailable(f"espeak-ng failed to initialise (code {rate})")
        lib.espeak_SetSynthCallback(_collect)
        _LIB, _RATE = lib, rate
    return _LIB, _RATE


def voice_settings(request: TTSRequest) -> dict[str, Any]:
    """The espeak-ng voice name and parameters for a speaker speaking with an emotion."""
    voice = request.speaker.voice
    prosody = prosody_for(request.emotion, request.response_style)
    name = voice.get("voice") or LANGUAGE_VOICES.get(request.language, request.language)
    if voice.get("variant"):
        name = f"{name}+{voice['variant']}"
    return {
        "name": name,
        "rate": int(round(float(voice.get("rate", 170)) * prosody.rate_scale)),
        "pitch": int(np.clip(int(voice.get("pitch", 50)) + prosody.pitch_offset, 0, 100)),
        "range": int(np.clip(int(voice.get("range", 50)) + prosody.range_offset, 0, 100)),
    }


class EspeakTTS:
    def __init__(self) -> None:
        _, self.sample_rate = _library()

    @property
    def identity(self) -> dict[str, Any]:
        return {"backend": "espeak-ng", "version": "1.52", "sample_rate": self.sample_rate}

    def render(self, text: str, settings: dict[str, Any]) -> np.ndarray:
        lib, _ = _library()
        with _LOCK:
            _CHUNKS.clear()
            if lib.espeak_SetVoiceByName(settings["name"].encode()) != 0:
                raise ValueError(f"espeak-ng has no voice {settings['name']!r}")
            lib.espeak_SetParameter(PARAM_RATE, settings["rate"], 0)
            lib.espeak_SetParameter(PARAM_PITCH, settings["pitch"], 0)
            lib.espeak_SetParameter(PARAM_RANGE, settings["range"], 0)
            lib.espeak_SetParameter(PARAM_VOLUME, 100, 0)
            data = text.encode("utf-8") + b"\0"
            status = lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
            lib.espeak_Synchronize()
            if status != 0:
                raise RuntimeError(f"espeak_Synth failed with code {status}")
            pcm = np.concatenate(_CHUNKS) if _CHUNKS else np.zeros(0, dtype=np.int16)
            _CHUNKS.clear()
        if pcm.size == 0:
            raise RuntimeError("espeak-ng produced no audio")
        return pcm.astype(np.float32) / 32768.0

    def synthesize(self, requests: list[TTSRequest]) -> list[np.ndarray | Exception]:
        results: list[np.ndarray | Exception] = []
        for request in requests:
            try:
                results.append(self.render(request.text, voice_settings(request)))
            except Exception as exc:  # one bad request fails that item only
                results.append(exc)
        return results
