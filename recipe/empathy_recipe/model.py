"""A speech LLM: Whisper encoder -> frame-stacking projector -> causal LM, audio spliced in at <|AUDIO|> tokens."""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModelForCausalLM, PreTrainedModel
from transformers.models.whisper.modeling_whisper import WhisperEncoder


class Projector(nn.Module):
    def __init__(self, d_audio: int, stack: int, d_model: int):
        super().__init__()
        self.stack = stack
        self.net = nn.Sequential(nn.Linear(d_audio * stack, d_model), nn.GELU(), nn.Linear(d_model, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        t = t - t % self.stack
        return self.net(x[:, :t].reshape(b, t // self.stack, d * self.stack))


class SpeechLM(nn.Module):
    def __init__(self, encoder: WhisperEncoder, lm: PreTrainedModel, audio_token_id: int, stack: int = 4):
        super().__init__()
        self.encoder = encoder
        self.lm = lm
        self.audio_token_id = audio_token_id
        self.projector = Projector(encoder.config.d_model, stack, lm.config.hidden_size)

    def forward(self, input_ids, attention_mask, input_features, audio_tokens, labels=None):
        audio = self.projector(self.encoder(input_features).last_hidden_state)
        embeds = self.lm.get_input_embeddings()(input_ids.clamp(min=0))
        picked = torch.cat([audio[i, : int(n)] for i, n in enumerate(audio_tokens)])
        positions = input_ids == self.audio_token_id
        if int(positions.sum()) != picked.shape[0]:
            raise ValueError(f"{int(positions.sum())} <|AUDIO|> tokens for {picked.shape[0]} audio frames")
        embeds = embeds.masked_scatter(positions.unsqueeze(-1), picked.to(embeds.dtype))
        return self.lm(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels)


def from_pretrained(encoder_path: str, lm_path: str, audio_token_id: int, vocab_size: int, stack: int = 4,
                    dtype: torch.dtype | None = None) -> SpeechLM:  # fmt: skip
    """Real checkpoints: a Whisper model directory (its encoder is used) and a causal LM (e.g. Qwen2.5)."""
    from transformers import WhisperModel

    encoder = WhisperModel.from_pretrained(encoder_path, dtype=dtype).get_encoder()
    lm = AutoModelForCausalLM.from_pretrained(lm_path, dtype=dtype)
    lm.resize_token_embeddings(vocab_size)
    return SpeechLM(encoder, lm, audio_token_id, stack)
