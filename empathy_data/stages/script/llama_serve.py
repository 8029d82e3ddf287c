"""Entry point of the embedded LLM server process: `python -m empathy_data.stages.script.llama_serve ARGS`.

Runs llama-cpp-python's OpenAI-compatible server with two changes made inside the child, so the
parent never needs `preexec_fn` (unsafe in a process that runs threads):
- it asks the kernel for SIGTERM when the build process dies (PR_SET_PDEATHSIG), even by SIGKILL;
- every request is evaluated from an empty KV cache. llama.cpp otherwise reuses the longest prompt
  prefix it still holds from the previous request, and how much it reuses changes the numerics, so
  the same request (same seed) could come back as different text after another request or after a
  restart. From scratch, a request gets the same reply whatever the server served before.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_ENV = "EMPATHY_DATA_PARENT_PID"
# How the embedded server samples under a grammar: in the script stage's key and the journal's salt, so
# replies sampled another way are never mixed into a build.
EMBEDDED_SAMPLER = "grammar-after-draw"


def die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        return
    parent = int(os.environ.get(PARENT_ENV, "0") or 0)
    if parent and os.getppid() != parent:  # the parent died before prctl took effect
        sys.exit(1)


def evaluate_every_request_from_scratch() -> None:
    from llama_cpp import Llama

    generate = Llama.generate

    def generate_from_scratch(self, tokens, *args, **kwargs):
        self.reset()  # n_tokens = 0: no prefix of the previous prompt is reused
        return generate(self, tokens, *args, **kwargs)

    Llama.generate = generate_from_scratch


class GrammarAfterSampler:
    """Draws a token with the sampler chain alone and checks only that token against the grammar;
    only when the grammar rejects it are all candidates filtered by the grammar and the token drawn
    again. llama.cpp's own server samples this way (common_sampler, grammar_first false): applying the
    grammar to every candidate each step means walking the grammar for all ~150k tokens of the
    vocabulary, which cost more than the model's own forward pass on the embedded 0.5B model."""

    def __init__(self, chain, grammar, n_vocab: int) -> None:
        import numpy as np
        from llama_cpp import llama_cpp as C

        self._C, self._np = C, np
        self.chain, self.grammar, self.n_vocab = chain, grammar, n_vocab
        dtype = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)
        self._all = np.zeros(n_vocab, dtype=dtype)
        self._one = np.zeros(1, dtype=dtype)
        self._ids = np.arange(n_vocab, dtype=np.intc)

    def _array(self, data) -> object:
        C = self._C
        return C.llama_token_data_array(
            data=data.ctypes.data_as(C.llama_token_data_p), size=len(data), selected=-1, sorted=False
        )

    def _candidates(self, ctx, idx: int) -> object:
        logits = self._C.llama_get_logits_ith(ctx.ctx, idx)
        self._all["id"] = self._ids
        self._all["logit"] = self._np.ctypeslib.as_array(logits, shape=(self.n_vocab,))
        self._all["p"] = 0.0
        return self._array(self._all)

    def _selected(self, candidates) -> int:
        if not 0 <= candidates.selected < candidates.size:  # as llama.cpp asserts: no token was drawn
            raise RuntimeError(f"sampler drew no token (selected {candidates.selected} of {candidates.size})")
        return int(candidates.data[candidates.selected].id)

    def sample(self, ctx, idx: int) -> int:
        C = self._C
        candidates = self._candidates(ctx, idx)
        C.llama_sampler_apply(self.chain, ctypes.byref(candidates))
        token = self._selected(candidates)
        self._one["id"], self._one["logit"], self._one["p"] = token, 1.0, 0.0
        one = self._array(self._one)
        C.llama_sampler_apply(self.grammar, ctypes.byref(one))
        if not self._np.isfinite(self._one["logit"][0]):  # the grammar forbids it: draw among allowed tokens
            candidates = self._candidates(ctx, idx)
            C.llama_sampler_apply(self.grammar, ctypes.byref(candidates))
            C.llama_sampler_apply(self.chain, ctypes.byref(candidates))
            token = self._selected(candidates)
        C.llama_sampler_accept(self.grammar, token)
        C.llama_sampler_accept(self.chain, token)
        return token

    def __del__(self) -> None:
        grammar, self.grammar = getattr(self, "grammar", None), None
        if grammar is not None:
            self._C.llama_sampler_free(grammar)  # the chain is freed by its own LlamaSampler (chain_owner)


def check_grammar_after_sampling() -> None:
    """Llama builds its sampler chain with the grammar inside; build the chain without it and keep the
    grammar aside (GrammarAfterSampler)."""
    from llama_cpp import Llama
    from llama_cpp import llama_cpp as C

    init_sampler = Llama._init_sampler

    def init_grammar_after(self, *args, grammar=None, **kwargs):
        chain = init_sampler(self, *args, grammar=None, **kwargs)
        if grammar is None:
            return chain
        grammar_sampler = C.llama_sampler_init_grammar(
            self._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
        )
        sampler = GrammarAfterSampler(chain.sampler, grammar_sampler, self._n_vocab)
        sampler.chain_owner = chain  # frees the chain with it
        return sampler

    Llama._init_sampler = init_grammar_after


def main() -> None:
    die_with_parent()
    evaluate_every_request_from_scratch()
    check_grammar_after_sampling()
    from llama_cpp.server.__main__ import main as serve

    sys.argv = ["llama_cpp.server", *sys.argv[1:]]
    serve()


if __name__ == "__main__":
    main()
