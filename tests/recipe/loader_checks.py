"""What each recipe's own loader requires of a line, asserted line by line (see docs/recipes.md for the sources).

These restate the loaders' reading logic and silent drops as checks; they do not import the recipes' code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import soundfile as sf

OPENS2S_KEYS = {"text", "audio", "speech_units", "spk_emb"}
UNITS_RE = re.compile(r"^(<\|audio_(\d+)\|>)+$")


def wav_info(path: str) -> tuple[float, int, int]:
    assert Path(path).is_absolute(), path
    assert path.count(":") != 2, path  # OpenS2S / BLSP-Emo get_waveform would read path:start:frames
    info = sf.info(path)
    return info.frames / info.samplerate, info.samplerate, info.channels


def check_opens2s_line(line: dict, units: bool) -> None:
    assert set(line) == {"messages"}
    messages = line["messages"]
    assert messages[-1]["role"] == "assistant" and messages[-2]["role"] == "user"
    unit_runs = 0
    for m in messages:
        assert m["role"] in ("user", "assistant")
        assert isinstance(m["content"], list) and m["content"]
        for item in m["content"]:
            assert set(item) == OPENS2S_KEYS, item
            assert all(isinstance(v, str) for v in item.values()), item
            if item["audio"]:
                assert m["role"] == "user"
                seconds, rate, channels = wav_info(item["audio"])
                assert (rate, channels) == (16000, 1)
                assert seconds * 16000 >= 8000 and seconds <= 30.0
            elif item["speech_units"]:
                assert m["role"] == "assistant" and item["text"]
                match = [int(n) for n in re.findall(r"<\|audio_(\d+)\|>", item["speech_units"])]
                assert UNITS_RE.match(item["speech_units"]) and all(0 <= n < 16384 for n in match)
                unit_runs += 1
            else:
                assert item["text"], item
    assert unit_runs == (1 if units else 0)
    last = messages[-2]["content"]
    assert any(i["audio"] for i in last)
    if "reasoning_content" in messages[-1]:
        assert isinstance(messages[-1]["reasoning_content"], str)


OSUM_AGES, OSUM_GENDERS = ("CHILD", "ADULT", "OLD"), ("MALE", "FEMALE")
OSUM_EMOTIONS = ("HAPPY", "SAD", "ANGRY", "FEAR", "DISGUST", "SURPRISE", "NEUTRAL")
# task keys of OSUM-EChat/conf/prompt_config.yaml the understanding lines may use (the "only X" variants included)
OSUM_PROMPT_TASKS = ("<TRANSCRIBE>", "<TRANSCRIBE> <EMOTION>", "<TRANSCRIBE> <GENDER>", "<TRANSCRIBE> <AGE>",
                     "<EMOTION>", "<GENDER>", "<AGE>")  # fmt: skip


def check_osum_line(line: dict, units: bool) -> None:
    assert {"key", "wav", "txt", "task", "extra"} <= set(line)
    seconds, rate, channels = wav_info(line["wav"])
    assert (rate, channels) == (16000, 1)
    assert 0.2 <= seconds <= 200  # filter_conf min_length 20 / max_length 20000 frames of 10 ms
    extra = line["extra"]
    # canonical values in extra (nothing in OSUM-EChat/wenet reads them); "<TAG>" form only inside txt
    assert extra["age"] in OSUM_AGES and extra["gender"] in OSUM_GENDERS and extra["q_emotion"] in OSUM_EMOTIONS
    txt = line["txt"]
    assert txt.strip() and "<NONE>" not in txt and not re.match(r"^<[^<>]+>", txt) and not txt.endswith("<&&>")
    if line["task"].startswith("<S2TCHAT>"):
        assert extra["question"]  # tokenize() drops an empty question
        if "THINK" in line["task"]:
            assert extra["think_str"]  # tokenize() drops <THINK> / <THINKER> lines without it
        if units:
            assert line["task"] in ("<S2TCHAT> <TEXT2TOKEN> <THINK>", "<S2TCHAT> <TEXT2TOKEN>")
            tokens = extra["speech_token"]
            assert isinstance(tokens, list) and tokens and all(isinstance(t, int) and 0 <= t < 4096 for t in tokens)
        else:
            # <TEXT2TOKEN> without speech_token would be dropped: text-only lines use the s2t tasks
            assert line["task"] in ("<S2TCHAT> <THINKER>", "<S2TCHAT>") and "speech_token" not in extra
    else:
        assert line["task"] in OSUM_PROMPT_TASKS
        assert "question" not in extra  # else the loader would prompt with it instead of the task prompt
        label = {"<TRANSCRIBE> <EMOTION>": "q_emotion", "<TRANSCRIBE> <GENDER>": "gender", "<TRANSCRIBE> <AGE>": "age"}
        if line["task"] in label:
            tag = f"<{extra[label[line['task']]]}>"
            # the label is the last and only "<...>" of txt: "only X" keeps extract_first_content(txt)
            assert txt.endswith(tag) and re.findall(r"<[^>]+>", txt) == [tag], txt
        else:
            assert "<" not in txt


def check_blsp_line(line: dict) -> None:
    # process_dataset reads these five; `source` (real / synthetic) and a contrast group's `group_id` ride along
    assert set(line) - {"group_id"} == {"audio", "text", "instruction", "emotion", "output", "source"}
    assert line["emotion"] in ("neutral", "happy", "angry", "sad", "surprise")
    seconds, rate, channels = wav_info(line["audio"])
    assert (rate, channels) == (16000, 1) and 1.0 <= seconds <= 30.0
    assert line["instruction"] == f"Continue the following sentence that reflects a '{line['emotion']}' emotion tone in a coherent style: "
    assert line["text"] and line["output"]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def load_like_recipe(path: Path):
    """The recipes (OpenS2S, BLSP-Emo) read their jsonl with datasets' json builder: every line must share a schema."""
    import datasets

    return datasets.load_dataset("json", data_files=[str(path)], split="train")


def osum_chat_seq_tokens(line: dict, count) -> float:
    """A chat line's sequence length as OSUM-EChat's filter counts it (ct_config.yaml filter_conf; the
    exporter's estimate): question tokens + user frames / 8 + target tokens + eos + the template allowance."""
    think = line["extra"].get("think_str")
    target = f"<think>{think}<think end>{line['txt']}" if think else line["txt"]
    seconds, _, _ = wav_info(line["wav"])
    return count(line["extra"]["question"]) + seconds * 100 / 8 + count(target) + 1 + 58


def osum_dynamic_batches(lines: list[dict], seq_tokens, max_seq_in_batch: int = 3700) -> list[list[dict]]:
    """OSUM-EChat's dynamic_batch (processor.py l.1465-1750 @ f2bcfac), restated for the chat tasks: one buffer
    per task, a chat buffer yielded once its sequence tokens pass 0.6 x max_seq_in_batch (l.1600); at the end
    of the data only the generic buffer (the <TRANSCRIBE> tasks) is flushed (l.1749)."""
    buffers: dict[str, list[dict]] = {}
    tokens: dict[str, float] = {}
    batches = []
    for line in lines:
        task = "generic" if line["task"].startswith("<TRANSCRIBE>") else line["task"]
        buffers.setdefault(task, []).append(line)
        tokens[task] = tokens.get(task, 0.0) + (seq_tokens(line) if task != "generic" else 0.0)
        if task != "generic" and tokens[task] > 0.6 * max_seq_in_batch:
            batches.append(buffers.pop(task))
            tokens[task] = 0.0
    if buffers.get("generic"):
        batches.append(buffers["generic"])
    return batches
