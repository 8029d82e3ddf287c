"""The embedded server answers a request the same way whatever it served before, even after a restart,
and the same again when it runs from the services' own environment with another thread count (.venv-services: no Prefect, no
torch; it finds the weights through its own embedded_models), which is how a production build reaches its LLM."""

import re
import subprocess
from pathlib import Path

import pytest

from empathy_data.config.model import OpenAIScript
from empathy_data.stages.script.llama_server import PROMPT_BLOCK, LlamaServer
from empathy_data.stages.script.openai_chat import OpenAIChat
from empathy_data.stages.script.prompting import build_messages, response_schema
from empathy_data.weights.embedded_models import embedded_llm
from tests.helpers import make_context

pytestmark = pytest.mark.slow


def ask(server_url: str, request) -> str:
    config = OpenAIScript(base_url=server_url, structured_output="json_object_schema", max_tokens=32, request_tag=False)
    return OpenAIChat(config, server_url).complete(*request)


def test_request_b_after_a_gets_the_reply_a_fresh_server_in_the_service_environment_gives(tmp_path, service_python):
    ctx = make_context(tmp_path, distributions={"exchanges": {1: 1.0}})
    a, b, c = (ctx.planner.spec(i) for i in (0, 1, 2))
    # no request tag: the prompts share their system prompt, which the server keeps as whole blocks
    request_a = (build_messages(a, ctx.prompts, 0, tag=False), response_schema(a), 11)
    request_b = (build_messages(b, ctx.prompts, 0, tag=False), response_schema(b), 22)
    request_c = (build_messages(c, ctx.prompts, 0, tag=False), response_schema(c), 33)
    other = ([{"role": "user", "content": "Write one short exchange about rain."}], response_schema(c), 44)

    with LlamaServer(embedded_llm(), n_threads=1, n_ctx=2048, log_path=tmp_path / "server.log") as url:
        ask(url, request_a)
        after_a = ask(url, request_b)  # keeps the blocks it shares with a
        ask(url, other)  # another prompt in between, as the judge's are in a build
        after_other = ask(url, request_c)  # keeps the shared blocks from the copy the server took of them
    probe = "from empathy_data.weights.embedded_models import embedded_llm; print(embedded_llm())"
    own_model = subprocess.run([service_python, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    # two threads, not one: a build gives the server its share of the cores, which is not in the script key
    service = LlamaServer(Path(own_model), n_threads=2, n_ctx=2048, log_path=tmp_path / "service.log", python=str(service_python))
    with service as url:
        alone_b = ask(url, request_b)  # the first request of a fresh server, in the other environment
        alone_c = ask(url, request_c)
    assert after_a == alone_b and after_other == alone_c
    assert alone_b and alone_c  # real replies
    reused = [int(n) for n in re.findall(r"prompt blocks reused: (\d+) of", (tmp_path / "server.log").read_text())]
    assert reused[0] == 0 and reused[1] >= PROMPT_BLOCK and reused[2] == 0 and reused[3] >= PROMPT_BLOCK
