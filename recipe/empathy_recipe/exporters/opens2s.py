"""OpenS2S training jsonl (CASIA-LM/OpenS2S, src/instruction_dataset.py `process_dataset`).

One line per exchange: {"messages": [...]}; dialogue history as earlier text messages, the user's turn as an
audio item, the reply as a text item with `speech_units` "<|audio_N|>..." (GLM-4-Voice ids) and `spk_emb` "".
Every content item carries text/audio/speech_units/spk_emb (the loader indexes all four).
"""

from __future__ import annotations

from empathy_recipe.errors import RecipeError
from empathy_recipe.exporters.base import Exporter, Item, Lines

MIN_SECONDS = 0.5  # the loader drops samples whose user audio is under 8000 samples at 16 kHz
MAX_SECONDS = 30.0  # one Whisper window: the audio encoder sees at most 30 s


def content(text: str = "", audio: str = "", speech_units: str = "") -> dict[str, str]:
    return {"text": text, "audio": audio, "speech_units": speech_units, "spk_emb": ""}


def units_string(ids: list[int]) -> str:
    return "".join(f"<|audio_{i}|>" for i in ids)


class OpenS2SExporter(Exporter):
    name = "opens2s"
    unit_kind = "glm-4-voice"

    def check_user(self, item: Item) -> str | None:
        if item.user_seconds < MIN_SECONDS:
            return "user_audio.too_short"
        if item.user_seconds > MAX_SECONDS:
            return "user_audio.too_long"
        if not (item.row.get("assistant_text") or "").strip():
            return "assistant_text.empty"
        return None

    def lines(self, item: Item) -> Lines:
        row = item.row
        messages = []
        for turn in row.get("history") or []:
            if turn.get("text"):
                messages.append({"role": "user" if turn["role"] == "user" else "assistant", "content": [content(turn["text"])]})
        messages.append({"role": "user", "content": [content(audio=str(item.user_wav))]})
        units = ""
        if item.units is not None:
            if not item.units:
                return Lines(reason="units.empty")
            if min(item.units) < 0 or max(item.units) >= 16384:
                raise RecipeError(f"GLM-4-Voice unit out of 0..16383 in {item.key}: wrong --tokenizer for this format")
            units = units_string(item.units)
        reply: dict = {"role": "assistant", "content": [content(row["assistant_text"], speech_units=units)]}
        if self.options.reasoning:
            reply["reasoning_content"] = row.get("reasoning") or ""
        messages.append(reply)
        return Lines(main=(f"{item.split}.jsonl", {"messages": messages}))
