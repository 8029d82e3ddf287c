"""vLLM's in-process offline engine: one batched `LLM.chat` call per attempt, JSON-schema constrained."""

from __future__ import annotations

from typing import Any

from empathy_data.config.model import VLLMScript
from empathy_data.core.errors import BackendUnavailable
from empathy_data.stages.script.prompting import CutOffReply, SamplingView, token_budget


class VLLMChat(SamplingView):
    def __init__(self, config: VLLMScript):
        try:
            from vllm import LLM
        except ImportError:
            raise BackendUnavailable(
                "script backend vllm needs vllm in this environment, which its pins rule out beside this package: "
                "run `vllm serve` in its own and use script.backend openai (services/README.md)"
            ) from None
        self.config = config
        kwargs: dict[str, Any] = {
            "model": config.model,
            "tensor_parallel_size": config.tensor_parallel_size,
            "gpu_memory_utilization": config.gpu_memory_utilization,
            "dtype": config.dtype,
        }
        if config.max_model_len:
            kwargs["max_model_len"] = config.max_model_len
        self.llm = LLM(**kwargs)

    @property
    def identity(self) -> dict[str, Any]:
        return self.sampling_identity("vllm")

    def sampling_params(self, schema: dict[str, Any], seed: int):
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        c = self.config
        return SamplingParams(
            temperature=c.temperature,
            top_p=c.top_p,
            frequency_penalty=c.frequency_penalty,
            presence_penalty=c.presence_penalty,
            max_tokens=token_budget(c.max_tokens, c.max_tokens_per_exchange, schema),
            seed=seed,
            structured_outputs=StructuredOutputsParams(json=schema),
        )

    def _chat(self, part: list[tuple[list[dict[str, str]], dict[str, Any], int]]) -> list[str]:
        outputs = self.llm.chat(
            [messages for messages, _, _ in part],
            [self.sampling_params(schema, seed) for _, schema, seed in part],
            use_tqdm=False,
        )
        replies: list[str] = []
        for out, (_, schema, _) in zip(outputs, part, strict=True):
            first = out.outputs[0]
            if first.finish_reason == "length":
                c = self.config
                replies.append(CutOffReply(first.text, token_budget(c.max_tokens, c.max_tokens_per_exchange, schema)))
            else:
                replies.append(first.text)
        return replies

    def complete_batch(
        self, requests: list[tuple[list[dict[str, str]], dict[str, Any], int]], on_reply=None
    ) -> list[Any]:
        """Replies in request order. vLLM validates inputs before it schedules anything: when a batch
        is refused for its input (ValueError: a prompt longer than the context, say), each request is
        tried alone so only the offending one fails. Any other error (engine dead, CUDA out of memory)
        is the infrastructure's and raises. `on_reply(i, text)` is called as each part finishes, so the
        replies of earlier parts are journaled even if a later part crashes the engine."""
        results: list[Any] = []
        step = self.config.max_in_flight
        for start in range(0, len(requests), step):
            part = requests[start : start + step]
            try:
                replies: list[Any] = self._chat(part)
            except ValueError:
                replies = []
                for request in part:
                    try:
                        replies += self._chat([request])
                    except ValueError as exc:
                        replies.append(exc)
            for i, reply in enumerate(replies, start=start):
                if on_reply is not None and not isinstance(reply, Exception):
                    on_reply(i, reply)
            results += replies
        return results

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any], seed: int) -> str | None:
        reply = self.complete_batch([(messages, schema, seed)])[0]
        if isinstance(reply, Exception):
            raise reply
        return reply
