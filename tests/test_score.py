"""`empathy-data score`: a model's replies to an evaluation set, scored by an LLM judge (the canned server),
the ASR's error rate, GenEmotion (the stand-in audio service hears each reply back; a stand-in
emotion2vec service gives P(target) = 0.25) and MOS (a stand-in DNSMOS service: 3.25), all computed by
hand here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf
import yaml

from empathy_data.config.model import FilterConfig, OpenAIScript
from empathy_data.tools.score import ScoreError, read_eval_items, read_replies, score_replies, summarise
from tests.canned_llm import CannedLLM
from tests.cli_helpers import run_cli
from tests.fake_service import SPOKEN_RATE, FakeService

ITEMS = [
    {"key": "d1-00", "source_text": "My dog ran away this morning.", "target_text": "I am so sorry, that is frightening.",
     "emotion": "sad", "target_emotion": "neutral", "language": "en", "source_wav": "audio/d1-00.wav"},
    {"key": "d2-00", "source_text": "I passed my driving test!", "target_text": "Congratulations, well done!",
     "emotion": "happy", "target_emotion": "happy", "language": "en", "source_wav": "audio/d2-00.wav"},
    {"key": "d3-00", "source_text": "They cancelled my flight again.", "target_text": "That is so annoying.",
     "emotion": "angry", "target_emotion": "neutral", "language": "en", "source_wav": "audio/d3-00.wav"},
]  # fmt: skip
FIRST = "I am glad you told me, let us look for him together."


@pytest.fixture
def services():
    emotion = FakeService({"service": "emotion", "backend": "emotion2vec", "model": {"weights": "e" * 32}})
    with FakeService.speaking_service() as speech, emotion, FakeService({"service": "mos"}) as mos:
        yield speech, emotion, mos


def write_case(tmp_path: Path, speech: FakeService) -> tuple[Path, Path]:
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    (eval_dir / "test.jsonl").write_text("".join(json.dumps(item) + "\n" for item in ITEMS))
    replies = tmp_path / "replies"
    replies.mkdir()
    sf.write(replies / "d1.wav", speech.say(FIRST), SPOKEN_RATE)
    sf.write(replies / "d2.wav", speech.say("That is nice to hear."), SPOKEN_RATE)  # says more than its text
    lines = [
        {"key": "d1-00", "text": FIRST, "audio": "d1.wav"},
        {"key": "d2-00", "text": "That is nice.", "audio": "d2.wav"},
        {"key": "d3-00", "text": "BROKEN reply"},  # the canned judge answers it with prose
    ]
    (replies / "responses.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return eval_dir, replies / "responses.jsonl"


def test_scores_are_the_judges_and_gen_emotion_computed_by_hand(tmp_path, services):
    speech, emotion, mos = services
    eval_dir, responses = write_case(tmp_path, speech)
    config = FilterConfig.model_validate({
        "asr": {"backend": "service", "url": speech.url}, "emotion": {"backend": "service", "url": emotion.url},
        "mos": {"service": {"url": mos.url}},
    })  # fmt: skip
    with CannedLLM() as url:
        judge = OpenAIScript(base_url=url, model="canned", structured_output="json_schema", temperature=0.0)
        items = read_eval_items(eval_dir)
        scores = score_replies(items, read_replies(responses, {i["key"] for i in items}), config, judge, batch=2)
    first, second, third = scores
    assert (first.under_emotion, first.transcript, first.error_rate) == (5, FIRST, 0.0)
    assert (first.p_target, first.gen_emotion) == (0.25, 25.0)
    assert (second.under_emotion, second.error_rate) == (2, 0.6667)  # two words more than its three
    assert second.gen_emotion == round(0.25 * (1 - 0.6667) * 100, 2) == 8.33
    assert third.under_emotion is None and third.gen_emotion is None and third.transcript is None
    assert len(third.errors) == 1 and third.errors[0].startswith("judge: malformed reply")
    summary = summarise(scores)
    assert [x.mos for x in scores] == [3.25, 3.25, None]  # the two replies with audio
    assert summary["overall"] == {"under_emotion": 3.5, "gen_emotion": 16.665, "error_rate": 0.333, "mos": 3.25,
                                  "items": 3, "errors": 1}  # fmt: skip
    assert summary["by_emotion"]["happy"]["gen_emotion"] == 8.33
    assert emotion.requests.count("POST /v1/emotion") == 2  # the two replies with audio and text


def test_the_command_writes_the_table_json_and_page(tmp_path, services):
    speech, emotion, _ = services
    eval_dir, responses = write_case(tmp_path, speech)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"filter": {"asr": {"backend": "service", "url": speech.url},
                                                 "emotion": {"backend": "service", "url": emotion.url}}}))  # fmt: skip
    with CannedLLM() as url:
        result = run_cli("score", str(eval_dir), str(responses), "--config", str(config), "--judge-url", url)
    assert result.returncode == 0, result.stderr[-2000:]
    shown = result.stdout + result.stderr
    assert "3 replies scored" in shown and "16.665" in shown
    saved = json.loads((responses.parent / "score" / "score.json").read_text())
    assert [item["under_emotion"] for item in saved["items"]] == [5, 2, None]
    assert "<td>16.665</td>" in (responses.parent / "score" / "score.html").read_text()
    own = tmp_path / "prompts" / "score"
    own.mkdir(parents=True)
    (own / "under_emotion.en.j2").write_text("Reply {{ reply }} to {{ user }}: glad you told me. JSON only.")
    with CannedLLM() as url:
        result = run_cli("score", str(eval_dir), str(responses), "--config", str(config), "--judge-url", url,
                         "--prompts-dir", str(tmp_path / "prompts"), "--to", str(tmp_path / "own"))  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    saved = json.loads((tmp_path / "own" / "score.json").read_text())
    assert [item["under_emotion"] for item in saved["items"]] == [5, 5, None]  # the canned judge read our prompt


def test_bad_responses_are_one_line_and_nothing_is_scored(tmp_path, services):
    speech, _, _ = services
    eval_dir, responses = write_case(tmp_path, speech)
    keys = {i["key"] for i in ITEMS}
    lines = responses.read_text().splitlines()
    for bad, message in (
        ([lines[0], lines[1]], "no reply to 1 item(s), first 'd3-00'"),
        ([*lines, '{"key": "nope", "text": "x"}'], ":4: key 'nope' is not an item"),
        ([lines[0].replace("d1.wav", "gone.wav"), *lines[1:]], ":1: audio"),
        ([*lines[:2], '{"key": "d3-00"}'], ":3: needs `text`, `audio` or both"),
    ):
        responses.write_text("\n".join(bad) + "\n")
        with pytest.raises(ScoreError, match=message.replace("(", r"\(").replace(")", r"\)")):
            read_replies(responses, keys)
    result = run_cli("score", str(eval_dir), str(responses))
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    assert "responses.jsonl:3" in result.stderr and not (responses.parent / "score").exists()


def test_a_judge_server_fault_stops_scoring_in_one_line(tmp_path, services):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Refuses(BaseHTTPRequestHandler):  # a server that rejects the request's response_format with a 500
        def do_POST(self):
            body = b'{"detail": "response_format.type: Input should be text or json_object"}'
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    speech, _, _ = services
    eval_dir, responses = write_case(tmp_path, speech)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuses)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/v1"
        result = run_cli("score", str(eval_dir), str(responses), "--judge-url", url, "--judge-retries", "0")
    finally:
        server.shutdown()
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr[-2000:]
    assert f"judge {url}: InternalServerError" in result.stderr and not (responses.parent / "score").exists()
    result = run_cli("score", str(eval_dir), str(responses), "--judge-url", url, "--judge-structured-output", "grammar")
    assert result.returncode == 2 and "--judge-structured-output: 'grammar' is not" in result.stderr
