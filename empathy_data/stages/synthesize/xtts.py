"""Coqui XTTS-v2 (`coqui-tts`): voice cloning from the reference clip in the target emotion."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from empathy_data.config.model import XTTSSynth
from empathy_data.core.errors import BackendUnavailable
from empathy_data.stages.synthesize.base import TTSRequest, render_each, seeded
from empathy_data.stages.synthesize.clips import pick_clip

LANGUAGES = {"en": "en", "zh": "zh-cn"}
XTTS_RATE = 24000  # XTTS-v2 generates 24 kHz audio whatever its config file says


class XTTS:
    sample_rate = XTTS_RATE

    def __init__(self, config: XTTSSynth):
        if config.accept_license:  # the user accepted the Coqui Public Model License in the config
            os.environ["COQUI_TOS_AGREED"] = "1"
        elif os.environ.get("COQUI_TOS_AGREED") != "1":
            raise BackendUnavailable(
                "synthesize.tts.accept_license: XTTS-v2 weights are under the Coqui Public Model License; "
                "read it, then set accept_license: true (or COQUI_TOS_AGREED=1)"
            )
        try:
            from TTS.tts.configs.xtts_config import XttsConfig
            from TTS.tts.models.xtts import Xtts
        except ImportError:
            raise BackendUnavailable(
                "tts backend xtts needs coqui-tts, torch and torchaudio: run it as a service in an environment "
                "of its own (services/requirements/tts-xtts.txt, services/README.md)"
            ) from None
        model_dir = Path(config.model_dir)
        if not (model_dir / "config.json").is_file():
            raise BackendUnavailable(f"synthesize.tts.model_dir: no config.json in {model_dir}")
        self.config = config
        xtts_config = XttsConfig()
        xtts_config.load_json(str(model_dir / "config.json"))
        self.model = Xtts.init_from_config(xtts_config)
        self.model.load_checkpoint(xtts_config, checkpoint_dir=str(model_dir), eval=True)
        self.model.to(config.device)
        self.latents: dict[str, Any] = {}

    @property
    def identity(self) -> dict[str, Any]:
        return {"backend": "xtts", "model": Path(self.config.model_dir).name}

    def conditioning(self, clip_path: str):
        if clip_path not in self.latents:
            self.latents[clip_path] = self.model.get_conditioning_latents(audio_path=[clip_path])
        return self.latents[clip_path]

    def render(self, request: TTSRequest) -> np.ndarray:
        gpt_latent, speaker_embedding = self.conditioning(pick_clip(request).path)
        with seeded(request.seed):  # the GPT decoder samples (temperature 0.75 by default)
            out = self.model.inference(
                request.text, LANGUAGES.get(request.language, request.language), gpt_latent, speaker_embedding
            )
        wav = out["wav"]
        wav = wav.cpu().numpy() if hasattr(wav, "cpu") else np.asarray(wav)
        return np.asarray(wav, dtype=np.float32).reshape(-1)

    def synthesize(self, requests: list[TTSRequest]) -> list[np.ndarray | Exception]:
        return render_each(requests, self.render)
