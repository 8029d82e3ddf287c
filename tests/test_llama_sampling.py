"""The embedded server's sampling: the grammar checks the drawn token, and filters every candidate only
when it rejects it (llama_serve.GrammarAfterSampler). Replies stay inside the schema."""

import json

import pytest
from llama_cpp import Llama

from empathy_data.stages.script import llama_serve
from empathy_data.weights.embedded_models import embedded_llm

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llm():
    return Llama(model_path=str(embedded_llm()), n_ctx=1024, n_threads=2, verbose=False)


def test_the_grammar_is_applied_to_every_candidate_only_when_it_rejects_the_drawn_token(llm, monkeypatch):
    monkeypatch.setattr(Llama, "_init_sampler", Llama._init_sampler)  # restored after the test
    llama_serve.check_grammar_after_sampling()
    steps = {"tokens": 0, "refiltered": 0}
    sample, candidates = llama_serve.GrammarAfterSampler.sample, llama_serve.GrammarAfterSampler._candidates

    def counted_sample(self, ctx, idx):
        steps["tokens"] += 1
        return sample(self, ctx, idx)

    def counted_candidates(self, ctx, idx):
        steps["refiltered"] += 1  # the first call per token builds the candidates; a second refilters
        return candidates(self, ctx, idx)

    monkeypatch.setattr(llama_serve.GrammarAfterSampler, "sample", counted_sample)
    monkeypatch.setattr(llama_serve.GrammarAfterSampler, "_candidates", counted_candidates)
    # The model would greet in prose; the schema allows only one of two made-up words.
    schema = {"type": "object", "properties": {"code": {"enum": ["zebra-17", "quartz-42"]}}, "required": ["code"]}
    out = llm.create_chat_completion(
        messages=[{"role": "user", "content": "Say hello to me in one friendly sentence."}],
        response_format={"type": "json_object", "schema": schema},
        max_tokens=40,
        seed=3,
        temperature=0.8,
    )
    reply = json.loads(out["choices"][0]["message"]["content"])
    assert reply["code"] in ("zebra-17", "quartz-42")
    refiltered = steps["refiltered"] - steps["tokens"]
    # every token went through the sampler; only some needed the grammar over the whole vocabulary
    assert steps["tokens"] > 0 and 0 < refiltered < steps["tokens"], steps
