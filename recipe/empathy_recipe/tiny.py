"""The tiny speech LLM and its tokenizer, built from configs with random weights (CPU smoke training, tests)."""

from __future__ import annotations

from collections.abc import Iterable

from empathy_recipe.data.template import AUDIO, AUDIO_BOS, AUDIO_EOS

SPECIALS = ["<|pad|>", "<|unk|>", "<|im_start|>", "<|im_end|>", AUDIO_BOS, AUDIO, AUDIO_EOS]
# Qwen's ChatML layout; the whitespace pre-tokenizer drops the newlines, which only the real tokenizer keeps.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer(texts: Iterable[str]):
    """A WordLevel tokenizer trained on `texts`, wrapped as a PreTrainedTokenizerFast with a chat template."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<|unk|>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=SPECIALS, min_frequency=1))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<|unk|>", pad_token="<|pad|>",
                                   eos_token="<|im_end|>", additional_special_tokens=SPECIALS[2:])  # fmt: skip
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(vocab_size: int, audio_token_id: int, n_mels: int = 80, chunk_seconds: int = 4, stack: int = 4,
                hidden: int = 48, seed: int = 0):  # fmt: skip
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM, WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    from empathy_recipe.model import SpeechLM

    torch.manual_seed(seed)
    enc_cfg = WhisperConfig(
        num_mel_bins=n_mels, d_model=32, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=64,
        max_source_positions=chunk_seconds * 50,
    )  # fmt: skip
    lm_cfg = Qwen2Config(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True,
    )  # fmt: skip
    return SpeechLM(WhisperEncoder(enc_cfg), Qwen2ForCausalLM(lm_cfg), audio_token_id, stack)
