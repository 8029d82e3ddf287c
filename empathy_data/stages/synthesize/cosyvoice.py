"""CosyVoice2 (FunAudioLLM/CosyVoice): instruct mode with the speaker's clip as zero-shot voice.

CosyVoice has no PyPI package: install it from its repository (with third_party/Matcha-TTS) and point
`repo_dir` at the checkout, or put it on PYTHONPATH yourself.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from empathy_data.config.model import CosyVoice2Synth
from empathy_data.core.errors import BackendUnavailable
from empathy_data.core.hashing import digest
from empathy_data.stages.synthesize.base import TTSRequest, render_each, seeded
from empathy_data.stages.synthesize.clips import pick_clip, target_emotion

# CosyVoice2's instructions are Chinese and must end with <|endofprompt|>.
INSTRUCTIONS = {
    "neutral": "用平静自然的语气说",
    "happy": "用开心的语气说",
    "sad": "用伤心的语气说",
    "angry": "用生气的语气说",
    "fearful": "用害怕的语气说",
    "surprised": "用惊讶的语气说",
    "disgusted": "用厌恶的语气说",
}
END_OF_PROMPT = "<|endofprompt|>"


def instruction(emotion: str) -> str:
    return INSTRUCTIONS.get(emotion, INSTRUCTIONS["neutral"]) + END_OF_PROMPT


class CosyVoice2TTS:
    def __init__(self, config: CosyVoice2Synth):
        if config.repo_dir:
            repo = Path(config.repo_dir)
            sys.path[:0] = [str(repo), str(repo / "third_party" / "Matcha-TTS")]
        try:
            from cosyvoice.cli.cosyvoice import CosyVoice2
        except ImportError:
            raise BackendUnavailable(
                "tts backend cosyvoice2 needs the CosyVoice repository (set synthesize.tts.repo_dir); see docs/backends.md"
            ) from None
        if not Path(config.model_dir).is_dir():
            raise BackendUnavailable(f"synthesize.tts.model_dir: {config.model_dir} is not a directory")
        self.config = config
        self.model = CosyVoice2(
            config.model_dir,
            load_jit=config.load_jit,
            load_trt=config.load_trt,
            load_vllm=config.load_vllm,
            fp16=config.fp16,
        )
        self.sample_rate = int(self.model.sample_rate)
        self.prompt_speakers: set[str] = set()

    @property
    def identity(self) -> dict[str, Any]:
        accelerated = {k: True for k in ("load_jit", "load_trt", "load_vllm") if getattr(self.config, k)}
        return {
            "backend": "cosyvoice2",
            "model": Path(self.config.model_dir).name,
            "speed": self.config.speed,
            **accelerated,
        }

    def prompt_speaker(self, clip_path: str, instruct: str) -> str:
        """The id of (clip, instruction) in CosyVoice's speaker cache, added on first use: the clip's speech
        tokens, features and speaker embedding are extracted once per clip, not once per turn. The cached
        entry carries its prompt text, which instruct mode fills with the instruction, so both are the key."""
        speaker_id = digest([clip_path, instruct], 16)
        if speaker_id not in self.prompt_speakers:
            self.model.add_zero_shot_spk(instruct, clip_path, speaker_id)
            self.prompt_speakers.add(speaker_id)
        return speaker_id

    def render(self, request: TTSRequest) -> np.ndarray:
        clip = pick_clip(request)
        instruct = instruction(target_emotion(request))
        with seeded(request.seed):  # the speech-token LM samples; pieces are generated while iterated
            speaker_id = self.prompt_speaker(clip.path, instruct)
            pieces = self.model.inference_instruct2(
                request.text, instruct, clip.path, zero_shot_spk_id=speaker_id, stream=False, speed=self.config.speed
            )
            audio = [np.asarray(piece["tts_speech"].cpu().numpy(), dtype=np.float32).reshape(-1) for piece in pieces]
        if not audio:
            raise RuntimeError("CosyVoice2 returned no audio")
        return np.concatenate(audio)

    def synthesize(self, requests: list[TTSRequest]) -> list[np.ndarray | Exception]:
        return render_each(requests, self.render)
