"""The OpenAI-compatible client against a small scripted HTTP server on 127.0.0.1."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from empathy_data.config import OpenAIScript, ValidationRules
from empathy_data.errors import BackendUnavailable
from empathy_data.schema import Script
from empathy_data.script.llama_server import free_port
from empathy_data.script.openai_chat import OpenAIChat
from empathy_data.script.stage import write_one
from tests.helpers import good_reply, make_context


class Scripted(BaseHTTPRequestHandler):
    statuses: list[int] = []
    bodies: list[dict] = []

    def log_message(self, *args):
        pass

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        status = type(self).statuses.pop(0) if type(self).statuses else 200
        n = type(self).bodies[-1]["response_format"]["schema"]["properties"]["exchanges"]["minItems"]
        payload = {"error": {"message": "boom"}} if status != 200 else {
            "id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": good_reply(n)}}],
        }  # fmt: skip
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server():
    Scripted.statuses, Scripted.bodies = [], []
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


def test_retry_budget_spent_fails_the_item_with_its_error(server, tmp_path):
    ctx = make_context(tmp_path)
    Scripted.statuses = [500] * 10
    config = OpenAIScript(base_url=server, structured_output="json_object_schema", request_retries=1)
    result = write_one(ctx.planner.spec(0), OpenAIChat(config, server), ctx.prompts, ValidationRules(), 3)
    assert result.verdict == "failed" and "InternalServerError" in result.reasons[0]
    assert len(Scripted.bodies) == 2


def test_unreachable_server_is_one_clear_error():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(BackendUnavailable, match="cannot reach the LLM server at http://127.0.0.1"):
        OpenAIChat(OpenAIScript(base_url=url), url).check_reachable()
