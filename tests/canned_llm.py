"""A canned OpenAI-compatible chat server on 127.0.0.1 (test double): the slow tier's builds use it in
place of the embedded 0.5B model, so a kill, a cluster or a bucket is tested in seconds, not minutes.

A reply is a pure function of the request's seed and the schema it asks for: the same request gets the
same reply on every run, in any order, after any restart, as with a real server's seeded sampling. Script
requests get dialogues of the asked length composed from sentence pools (so near-duplicate checks keep
most of them), a quarter of them opening with words no recogniser hears back (rejected by the filter,
so regeneration runs); judge requests get passing scores. `delay_s` holds each reply, so a test can kill a build
with requests in flight.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USER = [
    "I just heard some news this morning and I keep turning it over in my head",
    "Honestly the whole week has felt heavier than I expected it to be",
    "My sister called me last night and the conversation stayed with me",
    "I finally finished the project I was working on for months at work",
    "The train was late again and I missed the meeting with my manager",
    "Our neighbours threw a party until three and I barely slept at all",
    "I got a letter from the university about my application yesterday",
    "My old friend from school sent me a message out of nowhere today",
    "The doctor wants to run a few more tests before telling me anything",
    "I found out my favourite bakery on the corner is closing next month",
    "We adopted a small dog from the shelter and the house feels different",
    "I have been trying to learn the guitar and my fingers really hurt",
    "My flight home got cancelled and now I am stuck at the airport",
    "A colleague took credit for my idea in front of the whole team",
    "I won a small prize in the local photography contest this weekend",
    "My parents are moving to another city and I will miss them a lot",
]
DETAIL = [
    "and I am not sure what to do next.",
    "and it keeps coming back to me.",
    "and I wanted to tell someone about it.",
    "and I cannot stop thinking about it.",
    "so I thought I would talk it through.",
    "and part of me still does not believe it.",
    "and I do not know how to feel yet.",
    "which is a lot to take in right now.",
]
ASSISTANT = [
    "That sounds like a lot to carry, and it makes sense that it stays with you",
    "I am really glad you told me about this, it clearly matters to you",
    "It is completely understandable to feel unsettled after something like that",
    "What a wonderful thing to hear, you must have worked so hard for it",
    "That would frustrate anyone, especially when you were trying so hard",
    "I can hear how much this means to you, and your feelings are valid",
    "It is okay to take a moment and breathe before deciding anything",
    "Thank you for sharing that with me, it sounds like a big moment",
]
FOLLOW = [
    "Would you like to talk about what worries you most?",
    "What would help you feel a little better tonight?",
    "Is there someone close you could lean on this week?",
    "How are you taking care of yourself through all this?",
    "What do you think your next small step could be?",
    "I am here to listen for as long as you need.",
]
NOTE = [
    "The speaker sounds shaken by the news, so a calm and patient answer that invites more talk fits best.",
    "Their words carry a clear feeling, so the answer names it gently and offers steady support.",
    "This is personal and still fresh, so warmth and a simple open question suit the moment.",
    "They want to be heard more than advised, so the answer reflects the feeling and stays close.",
]


# Words no recogniser hears back: a turn of them fails the filter's WER check, so some dialogues are
# rejected and written again (regeneration), as with a real model.
MUMBLE = "Blorptak vindle zumquash frellon trivask mungor plee"


def script_reply(seed: int, exchanges: int) -> str:
    out = []
    for k in range(exchanges):
        n = seed // 7 + 31 * k
        user = f"{USER[(seed + 5 * k) % len(USER)]} {DETAIL[n % len(DETAIL)]}"
        out.append(
            {
                "user": MUMBLE if seed % 4 == 0 and k == 0 else user,
                "reasoning": NOTE[(seed + k) % len(NOTE)],
                "assistant": f"{ASSISTANT[(n // 3) % len(ASSISTANT)]}. {FOLLOW[(seed + 2 * k) % len(FOLLOW)]}",
            }
        )
    return json.dumps({"exchanges": out})


def judge_reply() -> str:
    return json.dumps({c: 5 for c in ("emotion", "style", "topic", "reasoning", "naturalness")} | {"why": "fits the plan"})


def score_reply(prompt: str) -> str:
    """An UnderEmotion judge (empathy_data/tools/score.py): 5 for a reply that says it is glad to be told,
    else 2; a prompt holding BROKEN gets a reply that is not JSON."""
    if "BROKEN" in prompt:
        return "I would rate this quite highly"
    return json.dumps({"score": 5 if "glad you told me" in prompt else 2, "why": "canned"})


def schema_of(body: dict[str, Any]) -> dict[str, Any]:
    form = body.get("response_format") or {}
    return form.get("json_schema", {}).get("schema") or form.get("schema") or {}


class CannedLLM:
    """`with CannedLLM() as url:` gives its `/v1` base URL; `requests` counts chat requests answered."""

    def __init__(self, delay_s: float = 0.0, port: int = 0, answer_only: int | None = None):
        self.delay_s = delay_s
        self.answer_only = answer_only  # then the server is as good as dead: later chat requests get no reply
        self.started = 0
        self.requests = 0
        self._lock = threading.Lock()
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                self._json({"object": "list", "data": [{"id": "canned", "object": "model"}]})

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with canned._lock:
                    canned.started += 1
                    dead = canned.answer_only is not None and canned.started > canned.answer_only
                if dead:  # the connection drops without a reply, as when the server process dies
                    self.close_connection = True
                    return
                schema = schema_of(body)
                exchanges = schema.get("properties", {}).get("exchanges")
                seed = int(body.get("seed") or 0)
                if "score" in schema.get("properties", {}):
                    content = score_reply(body["messages"][-1]["content"])
                else:
                    content = script_reply(seed, int(exchanges["minItems"])) if exchanges else judge_reply()
                if canned.delay_s:
                    time.sleep(canned.delay_s)
                with canned._lock:
                    canned.requests += 1
                self._json(
                    {
                        "id": f"canned-{seed}", "object": "chat.completion", "created": 0, "model": "canned",
                        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                )  # fmt: skip

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)  # allow_reuse_address: restartable
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        return self.url

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def canned_script(base_url: str, **overrides: Any) -> dict[str, Any]:
    """A build config's `script` block that writes with the canned server (judges on: they ask it too)."""
    return {
        "backend": "openai", "base_url": base_url, "model": "canned", "structured_output": "json_schema",
        "max_in_flight": 2, "max_attempts": 2, "request_retries": 1, "timeout_s": 30,
        # the judge gates as set, unmeasured: the calibration is tested in test_judge_calibration.py and the tiny
        # build, and its requests would count against a canned server that stops answering
        "topic": {"enabled": False}, "judge": {"min_agreement": None}, **overrides,
    }  # fmt: skip
