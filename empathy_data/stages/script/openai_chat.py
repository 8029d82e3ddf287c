"""Chat client for any OpenAI-compatible server (vLLM, llama.cpp, OpenAI) with JSON-schema output."""

from __future__ import annotations

import os
from typing import Any

from empathy_data.config.model import OpenAIScript
from empathy_data.core.errors import BackendUnavailable, ConfigError
from empathy_data.stages.script.prompting import CutOffReply, SamplingView, token_budget

NO_KEY = "not-needed"


def response_format(schema: dict[str, Any], form: str) -> dict[str, Any]:
    """Servers differ: OpenAI and vLLM take `json_schema`; llama.cpp's server only `json_object` + schema."""
    if form == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "dialogue", "schema": schema, "strict": True}}
    return {"type": "json_object", "schema": schema}


def api_key(config: OpenAIScript) -> str:
    if config.api_key_env is None:
        return NO_KEY
    key = os.environ.get(config.api_key_env)
    if not key:
        raise ConfigError("script.api_key_env", f"environment variable {config.api_key_env} is not set")
    return key


class OpenAIChat(SamplingView):
    def __init__(self, config: OpenAIScript, base_url: str):
        from openai import OpenAI

        self.config = config
        self.base_url = base_url
        self.form = config.schema_form()
        # The client retries 408/429/5xx and connection errors with exponential backoff.
        self.client = OpenAI(
            base_url=base_url,
            api_key=api_key(config),
            timeout=config.timeout_s,
            max_retries=config.request_retries,
        )

    @property
    def identity(self) -> dict[str, Any]:
        return self.sampling_identity("openai", structured_output=self.form)

    def check_reachable(self) -> None:
        import openai

        try:
            self.client.with_options(max_retries=1, timeout=10).models.list()
        except openai.APIConnectionError:
            raise BackendUnavailable(f"cannot reach the LLM server at {self.base_url}") from None
        except openai.AuthenticationError:
            raise BackendUnavailable(f"the LLM server at {self.base_url} rejected the API key") from None
        except openai.APIStatusError as exc:
            raise BackendUnavailable(f"the LLM server at {self.base_url} answered HTTP {exc.status_code}") from None

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any], seed: int) -> str | None:
        c = self.config
        budget = token_budget(c.max_tokens, c.max_tokens_per_exchange, schema)
        response = self.client.chat.completions.create(
            model=c.model,
            messages=messages,
            temperature=c.temperature,
            top_p=c.top_p,
            frequency_penalty=c.frequency_penalty,
            presence_penalty=c.presence_penalty,
            max_tokens=budget,
            seed=seed,
            response_format=response_format(schema, self.form),
        )
        choice = response.choices[0]
        if choice.finish_reason == "length" and choice.message.content is not None:
            return CutOffReply(choice.message.content, budget)
        return choice.message.content
