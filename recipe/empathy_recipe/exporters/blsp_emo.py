"""BLSP-Emo emotion-aware continuation jsonl (cwang621/blsp-emo, src/instruction_dataset.py `process_dataset`,
run with --instruction_field instruction --audio_field audio --input_field text --output_field output
--use_emotion True --max_length 256 as in its README)."""

from __future__ import annotations

from empathy_recipe.exporters.base import Exporter, Item, Lines
from empathy_recipe.labels import BLSP_EMO_EMOTION

MIN_SECONDS = 1.0  # min_duration / max_duration of process_dataset
MAX_SECONDS = 30.0
SYSTEM = "You are a helpful assistant. Your response should fulfill requests with empathy toward user's emotion tone."
# process_dataset's fixed tokens: start_ids = <|im_start|> "system" "\n" SYSTEM <|im_end|> "\n" <|im_start|> "user"
# "\n" (8 + SYSTEM); suffix_ids = <|im_end|> "\n" <|im_start|> "assistant" "\n" OUTPUT <|im_end|> "\n" <|endoftext|>
# (8 + OUTPUT, no early_stop). Role words and "\n" are one Qwen token each.
TEMPLATE_TOKENS = 16
# data_process/clean_noise_examples.py drops these replies before processing
REFUSALS_PREFIX = ("I'm sorry, but I cannot", "I'm sorry, but I'm not sure")
REFUSALS_LOWER = ("as an ai language model", "i'm sorry, but i")
REFUSALS = ("I'm not sure what you",)


def instruction(emotion: str) -> str:
    return f"Continue the following sentence that reflects a '{emotion}' emotion tone in a coherent style: "


def sequence_tokens(count, emotion: str, text: str, output: str) -> int:
    """What process_dataset compares with --max_length: start + instruction + input + suffix ids."""
    return TEMPLATE_TOKENS + count(SYSTEM) + count(instruction(emotion)) + count(text) + count(output)


class BlspEmoExporter(Exporter):
    name = "blsp-emo"

    def check_user(self, item: Item) -> str | None:
        if BLSP_EMO_EMOTION.get(item.row.get("user_emotion") or "") is None:
            return "emotion.unmapped"
        if item.user_seconds < MIN_SECONDS:
            return "user_audio.too_short"
        if item.user_seconds > MAX_SECONDS:
            return "user_audio.too_long"
        return None

    def lines(self, item: Item) -> Lines:
        row = item.row
        emotion = BLSP_EMO_EMOTION[row["user_emotion"]]
        text, output = (row.get("user_text") or "").strip(), (row.get("assistant_text") or "").strip()
        if not text or not output:
            return Lines(reason="text.empty")
        lower = output.lower()
        if output.startswith(REFUSALS_PREFIX) or any(r in lower for r in REFUSALS_LOWER) or any(r in output for r in REFUSALS):
            return Lines(reason="output.refusal")
        if sequence_tokens(self.counter.count, emotion, text, output) > self.options.max_length:
            return Lines(reason="tokens.too_long")
        line = {"audio": str(item.user_wav), "text": text, "instruction": instruction(emotion), "emotion": emotion, "output": output,
                "source": row.get("source") or "synthetic"}  # real: an ingested recording's transcript, continued
        if row.get("group_id"):  # a contrast group: the same words in other voices, each with its own reply
            line["group_id"] = row["group_id"]
        return Lines(main=(f"{item.split}.jsonl", line))
