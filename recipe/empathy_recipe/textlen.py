"""Token counts for the recipes' length filters: exact with the recipe's own text tokenizer, else an estimate."""

from __future__ import annotations

import re
from pathlib import Path

from empathy_recipe.errors import RecipeError

_PIECES = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[A-Za-z]+|\d|[^\sA-Za-z\d]")


class TextCounter:
    """`count(text)`: the recipe tokenizer's length when given (--text-tokenizer DIR, a Hugging Face tokenizer
    directory such as Qwen2.5's), else an estimate: one token per CJK character, digit and punctuation mark,
    and one per started 6 letters of a word (byte-level BPE vocabularies hold whole common words)."""

    def __init__(self, path: str | Path | None = None):
        self.exact = path is not None
        self._tok = None
        if path is not None:
            try:
                from transformers import AutoTokenizer
            except ImportError:
                raise RecipeError("--text-tokenizer needs transformers: pip install 'empathy-recipe[train]'") from None
            if not Path(path).exists():
                raise RecipeError(f"text tokenizer not found: {path}")
            self._tok = AutoTokenizer.from_pretrained(str(path))

    def count(self, text: str) -> int:
        if self._tok is not None:
            return len(self._tok.encode(text, add_special_tokens=False))
        return sum(-(-len(p) // 6) if p[0].isalpha() and p.isascii() else 1 for p in _PIECES.findall(text))
