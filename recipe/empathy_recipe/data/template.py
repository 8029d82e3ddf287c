"""Chat-template tokenization with audio placeholders, label masking, interleaved text / speech-unit targets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

IGNORE = -100
AUDIO_BOS, AUDIO, AUDIO_EOS = "<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>"


def interleave(text: Sequence[int], units: Sequence[int], n_text: int, n_units: int) -> list[int]:
    """OpenS2S's streaming order: n_text text tokens, then n_units unit tokens, repeated; the rest of the longer
    stream follows once the other runs out."""
    out: list[int] = []
    i = j = 0
    while i < len(text) or j < len(units):
        out += text[i : i + n_text]
        i += n_text
        out += units[j : j + n_units]
        j += n_units
    return out


class ChatEncoder:
    """One exchange -> input_ids / labels. Everything up to the generation prompt comes from the tokenizer's own
    chat template (history as text turns, the user turn as <|audio_bos|><|AUDIO|>*K<|audio_eos|>); the target is
    the reply (text, or text interleaved with speech units shifted past the text vocabulary) + <|im_end|>.
    Only target positions carry labels: the prompt, the history and the placeholders are IGNORE."""

    def __init__(self, tokenizer: Any, unit_offset: int | None = None, n_text: int = 1, n_units: int = 2,
                 end_token: str = "<|im_end|>"):  # fmt: skip
        self.tok = tokenizer
        self.audio_id = tokenizer.convert_tokens_to_ids(AUDIO)
        self.end_id = tokenizer.convert_tokens_to_ids(end_token)
        if self.audio_id in (None, tokenizer.unk_token_id) or self.end_id in (None, tokenizer.unk_token_id):
            raise ValueError(f"tokenizer lacks {AUDIO} or {end_token}: add them as special tokens")
        self.unit_offset = unit_offset if unit_offset is not None else len(tokenizer)
        self.n_text, self.n_units = n_text, n_units

    def encode(self, history: list[dict], placeholders: int, reply: str, units: Sequence[int] | None = None) -> dict:
        messages = [{"role": t["role"], "content": t["text"]} for t in history if t.get("text")]
        messages.append({"role": "user", "content": AUDIO_BOS + AUDIO * placeholders + AUDIO_EOS})
        prompt = self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        prompt_ids = self.tok(prompt, add_special_tokens=False)["input_ids"]
        text_ids = self.tok(reply, add_special_tokens=False)["input_ids"]
        if units:
            target = interleave(text_ids, [self.unit_offset + u for u in units], self.n_text, self.n_units)
        else:
            target = list(text_ids)
        target.append(self.end_id)
        if prompt_ids.count(self.audio_id) != placeholders:
            raise ValueError("chat template changed the number of audio placeholders")
        return {"input_ids": prompt_ids + target, "labels": [IGNORE] * len(prompt_ids) + target}
