"""Entry point of the embedded LLM server process: `python -m empathy_data.stages.script.llama_serve ARGS`.

Runs llama-cpp-python's OpenAI-compatible server with two changes made inside the child, so the
parent never needs `preexec_fn` (unsafe in a process that runs threads):
- it asks the kernel for SIGTERM when the build process dies (PR_SET_PDEATHSIG), even by SIGKILL;
- a request reuses only whole prompt blocks of the previous request (reuse_whole_blocks).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_ENV = "EMPATHY_DATA_PARENT_PID"
# The prompt is decoded in blocks of this many tokens, and a request reuses whole blocks of the previous
# one (reuse_whole_blocks). Small enough that the writer's shared system prompt fills two; prompt
# decoding measured as fast as with llama.cpp's default 512 (46 tok/s on 2 cores). The block size
# changes the numerics of prompts longer than a block, so it is part of EMBEDDED_SAMPLER.
PROMPT_BLOCK = 64
# How the embedded server samples under a grammar and decodes prompts: in the script stage's key and the
# journal's salt, so replies computed another way are never mixed into a build.
EMBEDDED_SAMPLER = f"grammar-after-draw, prompt blocks of {PROMPT_BLOCK}"


def die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        return
    parent = int(os.environ.get(PARENT_ENV, "0") or 0)
    if parent and os.getppid() != parent:  # the parent died before prctl took effect
        sys.exit(1)


def reusable_prefix(held: list[int], tokens: list[int], block: int) -> int:
    """How many prompt tokens to keep from the KV cache: the common prefix of what it holds and the new
    prompt, cut down to whole blocks of `block` tokens, and short of the whole prompt (its last token
    must be decoded again for fresh logits)."""
    common = 0
    for held_token, token in zip(held, tokens[:-1], strict=False):
        if held_token != token:
            break
        common += 1
    return common // block * block


def reuse_whole_blocks(keep_prefixes: int = 4) -> None:
    """A request keeps the KV of the whole n_batch blocks its prompt shares with the previous request, or
    with a prefix that two earlier requests shared (the writer's system prompt, the judge's preamble:
    their requests interleave), and decodes the rest. llama.cpp decodes a prompt block by block from
    position 0, so a kept block holds exactly what decoding it from scratch would: the reply is the one a
    fresh server gives. Keeping a prefix that ends inside a block does not: the rest is decoded in
    batches of another size, which changes the numerics (measured: logits off by up to 0.29 for a
    7-token prefix, equal for 128), and the same request could come back as different text after
    another request or a restart."""
    from collections import OrderedDict

    from llama_cpp import Llama

    generate = Llama.generate
    shared: OrderedDict[tuple[int, ...], object] = OrderedDict()  # prefix -> LlamaState holding its KV

    def generate_reusing_blocks(self, tokens, *args, **kwargs):
        tokens = list(tokens)
        kept = reusable_prefix(list(self._input_ids), tokens, self.n_batch)
        known = [p for p in shared if len(p) > kept and reusable_prefix(p, tokens, self.n_batch) == len(p)]
        if known:
            prefix = max(known, key=len)
            seed = self._seed  # this request's, set before generate(); a state carries its own
            self.load_state(shared[prefix])
            self._seed = seed
            shared.move_to_end(prefix)
            kept = len(prefix)
        elif kept and tuple(tokens[:kept]) not in shared:
            self.n_tokens = kept
            self._ctx.kv_cache_seq_rm(-1, kept, -1)
            shared[tuple(tokens[:kept])] = self.save_state()
            if len(shared) > keep_prefixes:
                shared.popitem(last=False)
        self.n_tokens = kept  # generate() then keeps exactly these, or starts from scratch when 0
        print(f"prompt blocks reused: {kept} of {len(tokens)} tokens", file=sys.stderr, flush=True)
        return generate(self, tokens, *args, **kwargs)

    Llama.generate = generate_reusing_blocks


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
    reuse_whole_blocks()
    check_grammar_after_sampling()
    from llama_cpp.server.__main__ import main as serve

    sys.argv = ["llama_cpp.server", *sys.argv[1:]]
    serve()


if __name__ == "__main__":
    main()
