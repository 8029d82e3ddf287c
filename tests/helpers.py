"""Shared test builders: configs, specs, sine-wave audio, and a scripted fake chat backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from empathy_data.config.model import parse_config
from empathy_data.runtime.build import BuildContext

REPO = Path(__file__).resolve().parent.parent


def make_context(tmp_path: Path, **overrides: Any) -> BuildContext:
    data = {"name": "t", "seed": 3, "num_dialogues": 4, "chunk_size": 2, "output": str(tmp_path / "out")}
    if "speaker_pool" in overrides:  # the test pools hold adults only: the plan must not ask for other ages
        data["distributions"] = {"age_group": {"adult": 1.0}}
    # Fake chat backends answer the script schema only, and sine waves have no voice: the judges are off
    # unless a test turns them on (tests/test_script_judges.py, tests/test_speaker_judge.py).
    script = overrides.pop("script", {})
    if isinstance(script.get("judge"), dict):  # a judge a test turns on gates as set, unmeasured, unless it asks
        script["judge"] = {"min_agreement": None, **script["judge"]}
    filter_ = overrides.pop("filter", {})
    # The fakes tell requests apart by the request tag (off by default for the embedded server).
    data["script"] = {"judge": {"enabled": False}, "topic": {"enabled": False}, "request_tag": True, **script}
    data["filter"] = {"speaker": {"enabled": False}, **filter_}
    data.update(overrides)
    return BuildContext.from_config(parse_config(data), REPO)


def pool_with_clip(directory: Path, clip_path: str) -> Path:
    """A two-speaker pool YAML whose first speaker has one neutral reference clip at `clip_path`."""
    pool = directory / "pool.yaml"
    pool.write_text(
        "speakers:\n- id: a\n  gender: female\n  age_group: adult\n  language: en\n"
        f"  clips: {{neutral: [{{path: {clip_path}, transcript: hello}}]}}\n"
        "- {id: b, gender: male, age_group: adult, language: en}\n"
    )
    return pool


def sine(freq: float = 220.0, seconds: float = 1.0, rate: int = 16000, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def good_reply(n_exchanges: int) -> str:
    return json.dumps(
        {
            "exchanges": [
                {
                    "user": f"I feel really awful today because my plans fell apart number {i}.",
                    "reasoning": "The person says their plans fell apart and sounds sad, so a gentle comforting reply fits.",
                    "assistant": f"I am so sorry to hear that, it sounds really hard for you {i}.",
                }
                for i in range(n_exchanges)
            ]
        }
    )


class FakeChat:
    """Answers with queued replies (str) or raises queued exceptions; records every call."""

    def __init__(self, replies: list[Any] | None = None, default: Any = None):
        self.replies = list(replies or [])
        self.default = default
        self.calls: list[dict] = []

    @property
    def identity(self) -> dict:
        return {"backend": "fake", "model": "fake"}

    def complete(self, messages, schema, seed):
        self.calls.append({"messages": messages, "schema": schema, "seed": seed})
        n = schema["properties"]["exchanges"]["minItems"]
        reply = self.replies.pop(0) if self.replies else (self.default or good_reply(n))
        if isinstance(reply, Exception):
            raise reply
        return reply(n) if callable(reply) else reply


def check_text(reason) -> str | None:
    """A script check's finding as 'check: detail' (validate_script returns a Reason, or None)."""
    return None if reason is None else f"{reason.check}: {reason.detail}"
