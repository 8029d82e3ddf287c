"""espeak-ng through the shared library in `espeakng-loader` (no system package needed).

libespeak-ng keeps its synthesiser in process-global state, and its waveform generator carries state
from one utterance into the next, so the same text renders differently depending on what came before.
Each batch therefore gets a private copy of the library, loaded fresh and unloaded afterwards: audio is
a pure function of the batch, and threads never share a synthesiser. Its random jitter is seeded per
utterance for the same reason.
"""

from __future__ import annotations

import _ctypes
import ctypes
import os
import shutil
import tempfile
from typing import Any

import numpy as np

from empathy_data.core.errors import BackendUnavailable
from empathy_data.stages.synthesize.base import TTSRequest, render_each
from empathy_data.stages.synthesize.prosody import prosody_for

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000
CHARS_UTF8 = 1
POS_CHARACTER = 1
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE = 1, 2, 3, 4
LANGUAGE_VOICES = {"en": "en-us", "zh": "cmn"}
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def _loader():
    try:
        import espeakng_loader
    except ImportError:
        raise BackendUnavailable("espeak backend needs espeakng-loader: pip install espeakng-loader") from None
    return espeakng_loader


class EspeakInstance:
    """A private, freshly initialised libespeak-ng; use as a context manager."""

    def __init__(self) -> None:
        loader = _loader()
        self.data_path = loader.get_data_path().encode()
        self.source = loader.get_library_path()
        self.chunks: list[np.ndarray] = []
        self.callback = _CALLBACK(self._collect)
        self.lib: ctypes.CDLL | None = None
        self.sample_rate = 0

    def _collect(self, wav, numsamples, events):  # noqa: ARG002
        if numsamples > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        return 0

    def __enter__(self) -> EspeakInstance:
        with tempfile.TemporaryDirectory(prefix="espeak-") as tmp:
            private = os.path.join(tmp, "libespeak-ng-private.so")
            shutil.copyfile(self.source, private)
            lib = ctypes.CDLL(private)  # a distinct path gives a distinct copy of the library's globals
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path, INITIALIZE_DONT_EXIT)
        if self.sample_rate <= 0:
            raise BackendUnavailable(f"espeak-ng failed to initialise (code {self.sample_rate})")
        lib.espeak_SetSynthCallback(self.callback)
        self.lib = lib
        return self

    def __exit__(self, *exc) -> None:
        if self.lib is not None:
            self.lib.espeak_Terminate()
            _ctypes.dlclose(self.lib._handle)
            self.lib = None

    def render(self, text: str, settings: dict[str, Any]) -> np.ndarray:
        lib = self.lib
        assert lib is not None, "use EspeakInstance as a context manager"
        self.chunks.clear()
        if lib.espeak_SetVoiceByName(settings["name"].encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {settings['name']!r}")
        lib.espeak_SetParameter(PARAM_RATE, settings["rate"], 0)
        lib.espeak_SetParameter(PARAM_PITCH, settings["pitch"], 0)
        lib.espeak_SetParameter(PARAM_RANGE, settings["range"], 0)
        lib.espeak_SetParameter(PARAM_VOLUME, 100, 0)
        lib.espeak_ng_SetRandSeed(1)  # its waveform jitter draws random numbers: fix them per utterance
        data = text.encode("utf-8") + b"\0"
        status = lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with code {status}")
        pcm = np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.int16)
        self.chunks.clear()
        if pcm.size == 0:
            raise RuntimeError("espeak-ng produced no audio")
        return pcm.astype(np.float32) / 32768.0


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
        with EspeakInstance() as probe:
            self.sample_rate = probe.sample_rate

    @property
    def identity(self) -> dict[str, Any]:
        return {"backend": "espeak-ng", "version": "1.52", "sample_rate": self.sample_rate}

    def synthesize(self, requests: list[TTSRequest]) -> list[np.ndarray | Exception]:
        with EspeakInstance() as engine:
            return render_each(requests, lambda request: engine.render(request.text, voice_settings(request)))
