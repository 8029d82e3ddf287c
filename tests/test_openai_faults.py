"""The OpenAI-compatible client against a small scripted HTTP server on 127.0.0.1."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from empathy_data.config.model import OpenAIScript, ValidationRules
from empathy_data.core.errors import BackendUnavailable, InfrastructureError
from empathy_data.records.reasons import texts
from empathy_data.records.schema import Script
from empathy_data.stages.script.llama_server import free_port
from empathy_data.stages.script.openai_chat import OpenAIChat
from empathy_data.stages.script.stage import write_one
from tests.helpers import good_reply, make_context


class Scripted(BaseHTTPRequestHandler):
    statuses: list[int] = []
    bodies: list[dict] = []
    cut_off = False  # answer like a server that hit max_tokens: finish_reason "length", JSON cut short

    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        status = type(self).statuses.pop(0) if type(self).statuses else 200
        n = type(self).bodies[-1]["response_format"]["schema"]["properties"]["exchanges"]["minItems"]
        content, finish = (good_reply(n)[:60], "length") if type(self).cut_off else (good_reply(n), "stop")
        payload = {"error": {"message": "boom"}} if status != 200 else {
            "id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": content}}],
        }  # fmt: skip
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server():
    Scripted.statuses, Scripted.bodies, Scripted.cut_off = [], [], False
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_http_500s_are_retried_then_succeed(server, tmp_path):
    ctx = make_context(tmp_path)
    Scripted.statuses = [500, 503]
    config = OpenAIScript(
        base_url=server, structured_output="json_object_schema", request_retries=3, frequency_penalty=0.5
    )
    result = write_one(ctx.planner.spec(0), OpenAIChat(config, server), ctx.prompts, ValidationRules(), 1)
    assert isinstance(result, Script)
    assert len(Scripted.bodies) == 3
    assert Scripted.bodies[0]["response_format"]["type"] == "json_object"
    assert Scripted.bodies[0]["frequency_penalty"] == 0.5 and Scripted.bodies[0]["presence_penalty"] == 0.0


def test_retry_budget_spent_on_server_errors_fails_the_chunk_not_the_item(server, tmp_path):
    ctx = make_context(tmp_path)
    Scripted.statuses = [500] * 10
    config = OpenAIScript(base_url=server, structured_output="json_object_schema", request_retries=1)
    with pytest.raises(InfrastructureError, match="llm: InternalServerError"):
        write_one(ctx.planner.spec(0), OpenAIChat(config, server), ctx.prompts, ValidationRules(), 3)
    assert len(Scripted.bodies) == 2


def test_request_the_server_refuses_fails_that_item_only(server, tmp_path):
    ctx = make_context(tmp_path)
    Scripted.statuses = [400]  # e.g. a prompt longer than the server's context
    config = OpenAIScript(base_url=server, structured_output="json_object_schema", request_retries=3)
    result = write_one(ctx.planner.spec(0), OpenAIChat(config, server), ctx.prompts, ValidationRules(), 3)
    assert result.verdict == "failed" and "BadRequestError" in str(result.reasons[0])
    assert len(Scripted.bodies) == 1  # a 400 is not retried


def test_connection_refused_after_retries_fails_the_chunk_and_sends_nothing_more(tmp_path):
    from empathy_data.stages.script.stage import ScriptRun, write_scripts

    ctx = make_context(tmp_path, num_dialogues=4, chunk_size=4)
    url = f"http://127.0.0.1:{free_port()}/v1"
    config = OpenAIScript(base_url=url, structured_output="json_object_schema", request_retries=0)
    chat = OpenAIChat(config, url)
    sent = []
    complete = chat.complete
    chat.complete = lambda *a: sent.append(1) or complete(*a)
    with pytest.raises(InfrastructureError, match="llm: APIConnectionError"):
        write_scripts(ctx.planner.chunk(0), ScriptRun(chat, ctx.prompts, ValidationRules(), 3, 1))
    assert len(sent) == 1  # after the first fault no further request is sent


def test_unreachable_server_is_one_clear_error():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(BackendUnavailable, match="cannot reach the LLM server at http://127.0.0.1"):
        OpenAIChat(OpenAIScript(base_url=url), url).check_reachable()


def test_the_token_budget_grows_with_the_exchanges_asked_for(server, tmp_path):
    ctx = make_context(tmp_path, distributions={"exchanges": {6: 1.0}})
    config = OpenAIScript(base_url=server, structured_output="json_object_schema", max_tokens=700)
    result = write_one(ctx.planner.spec(0), OpenAIChat(config, server), ctx.prompts, ValidationRules(), 1)
    assert isinstance(result, Script) and len(result.turns) == 12
    assert Scripted.bodies[0]["max_tokens"] == 700 + 5 * config.max_tokens_per_exchange


def test_a_reply_cut_off_by_the_token_limit_is_named_as_such(server, tmp_path):
    ctx = make_context(tmp_path, distributions={"exchanges": {2: 1.0}})
    Scripted.cut_off = True
    config = OpenAIScript(base_url=server, structured_output="json_object_schema", max_tokens=100, max_tokens_per_exchange=50)
    result = write_one(ctx.planner.spec(0), OpenAIChat(config, server), ctx.prompts, ValidationRules(), 2)
    assert result.verdict == "rejected"  # the budget's doing, not a model that cannot write JSON
    assert texts(result.reasons) == ["script: cut_off: reply reached max_tokens 150 before its JSON closed"] * 2
