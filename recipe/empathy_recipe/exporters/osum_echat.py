"""OSUM-EChat raw `data.list` (ASLP-lab/OSUM, OSUM-EChat/wenet/dataset/process/processor.py: parse_raw,
tokenize, filter with OSUM-EChat/conf/ct_config.yaml's dataset_conf.filter_conf).

One JSON line per item with key / wav / txt / task / extra. Dialogue exchanges use task
"<S2TCHAT> <TEXT2TOKEN> <THINK>" (reply text + S3 speech tokens, reasoning note as extra.think_str; `tokenize`
drops a <THINK> line without think_str and a <TEXT2TOKEN> line without speech_token). Text-only exports
(--no-units) use "<S2TCHAT> <THINKER>", the loader's speech-to-text task with the same <think> target and no
speech tokens. The understanding tasks (transcription, emotion, gender, age) get one line per user utterance,
with the task tags of OSUM-EChat/conf/prompt_config.yaml. Raw lines carry no history: the raw loader drops any
line whose history entries are not decoded audio.

The last partial batch of a chat task is lost in training: OSUM-EChat's `dynamic_batch` (processor.py
l.1465-1750) keeps one buffer per output type and, at the end of the data, flushes only the generic one (the
<TRANSCRIBE> and understanding lines). `fill_last_batch` (--fill-last-batch TOKENS) appends, after each chat
task's lines in its file, repeats of them (keys "<key>-fill<n>") worth TOKENS sequence tokens: read in order,
the batch dropped at the end then holds repeats only, and even a small export yields its chat batches
(docs/recipes.md).

extra.age / extra.gender / extra.q_emotion carry the canonical values (CHILD, MALE, SAD, ...; labels.py); the
"<TAG>" form is written where the loader reads a label, the `txt` of the understanding tasks.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

from empathy_recipe.errors import RecipeError
from empathy_recipe.exporters.base import Exporter, Item, Lines
from empathy_recipe.labels import OSUM_AGE, OSUM_EMOTION, OSUM_GENDER, osum_tag

TASKS = ("chat", "transcribe", "emotion", "gender", "age")
UNDERSTANDING_TAGS = {
    "transcribe": "<TRANSCRIBE>",
    "emotion": "<TRANSCRIBE> <EMOTION>",
    "gender": "<TRANSCRIBE> <GENDER>",
    "age": "<TRANSCRIBE> <AGE>",
}
# filter_conf of ct_config.yaml: lengths in 10 ms frames, tokens of the Qwen2.5 text tokenizer
MIN_FRAMES, MAX_FRAMES = 20, 20000
TOKEN_MAX = 1200
MAX_SEQ_LEN = 2000
INSTRUCT_OVERHEAD = 29 * 2  # the filter's allowance for the chat template of the instruct LLM
PROMPT_TOKENS = 64  # upper bound for a prompt_config.yaml prompt (understanding tasks)
# tokenize() drops replies naming another assistant (`self_list` / `if_have_other_name` in processor.py). This is
# a superset of the names that list matches in effect (some of its entries are fused by missing commas, e.g.
# "Qwen助手" "VirtualAssistant"), plus the <NONE> forms filter() drops under `fiter_txt_is_None`: a line is
# skipped when the loader might drop it, never written when it would.
OTHER_NAMES = (
    "MOSS Assistant", "MOSS助手", "QWEN", "QWEN Assistant", "QWEN助手", "小智机器人", "小智助手", "小智AI助手", "Qwen助手",
    "VirtualAssistant", "virtual assistant", "Helper", "helper", "ChatBot", "chat bot", "chatbot", "Chat Bot",
    "AI Agent", "AI agent", "ChatGPT", "chatgpt", "<think>", "小明助手", "小红小助手", "小刚AI", "晓明助手", "阿强Bot",
    "阿丽小助手", "王磊AI助手", "李娜AI", "张伟助手", "赵敏Bot", "刘洋AI小助手", "陈晨智能助手", "MOSS小助手", "QWEN小助手",
    "小智Bot", "Assistant小智", "AI小智", "ChatBot小明", "VirtualAssistant李娜", "大型语言模型", "语言模型",
    "<None>", "<NONE>", "<none>",
)  # fmt: skip
_LEADING_TAG = re.compile(r"^<[^<>]+>")
_CJK_SPACE = re.compile(r"\s*([\u4e00-\u9fff])\s*")
_ANGLE_SPACE = (re.compile(r"\s*<\s*"), re.compile(r"\s*>\s*"))


def normalized(text: str) -> str:
    """The text as the loader tokenizes it (process_text2 for non-<TRANSCRIBE> tasks)."""
    text = _CJK_SPACE.sub(r"\1", text.replace("\n", " "))
    return _ANGLE_SPACE[1].sub(">", _ANGLE_SPACE[0].sub("<", text))


def text_problem(text: str) -> str | None:
    if not text.strip():
        return "empty"
    if any(name in text for name in OTHER_NAMES):
        return "names_other_assistant"
    if _LEADING_TAG.match(text) or text.endswith("<&&>"):
        return "tag_in_text"
    return None


class OsumEChatExporter(Exporter):
    name = "osum-echat"
    unit_kind = "s3"
    writes_assistant_audio = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seq_of: dict[str, float] = {}  # chat line key -> its sequence tokens, as the loader's filter counts them
        # (file, task) -> its first chat lines with their tokens, up to fill_last_batch tokens: what is repeated
        self.chat_lines: dict[tuple[str, str], list[tuple[dict, float]]] = defaultdict(list)
        self.chat_tokens: Counter[tuple[str, str]] = Counter()

    def write_line(self, name: str, line: dict) -> None:
        super().write_line(name, line)
        seq = self.seq_of.pop(line["key"], None)
        if seq is not None and self.options.fill_last_batch:
            where = (name, line["task"])
            if self.chat_tokens[where] < self.options.fill_last_batch:
                self.chat_lines[where].append((line, seq))
            self.chat_tokens[where] += seq

    def close(self) -> None:
        """After each chat task's lines, repeats of them (in order, cycling) worth `fill_last_batch` tokens."""
        for (name, task), lines in self.chat_lines.items():
            tokens, n = 0.0, 0
            while tokens < self.options.fill_last_batch:
                original, seq = lines[n % len(lines)]
                n += 1
                super().write_line(name, {**original, "key": f"{original['key']}-fill{n}"})
                tokens += seq
            if n:
                self.filled[f"{name} {task}"] = n
        super().close()

    def check_user(self, item: Item) -> str | None:
        frames = item.user_seconds * 100
        if frames < MIN_FRAMES:
            return "user_audio.too_short"
        if frames > MAX_FRAMES:
            return "user_audio.too_long"
        return None

    def labels(self, row: dict) -> dict[str, str]:
        """The canonical labels for `extra` (CHILD / MALE / SAD ...); `osum_tag` gives the "<TAG>" form."""
        return {
            "age": OSUM_AGE[row["user_age_group"]],
            "gender": OSUM_GENDER[row["user_gender"]],
            "q_emotion": OSUM_EMOTION[row["user_emotion"]],
        }

    def lines(self, item: Item) -> Lines:
        out = Lines()
        if "chat" in self.options.tasks:
            main = self.chat_line(item)
            if isinstance(main, str):
                out.reason = main
            else:
                out.main = main
        for task in self.options.tasks:
            if task == "chat":
                continue
            line = self.understanding_line(item, task)
            if isinstance(line, str):
                out.extra_skipped.append(f"{task}: {line}")
            else:
                out.extra.append(line)
        if out.main is None and out.reason is None and not out.extra:
            out.reason = out.extra_skipped[0].split(": ", 1)[1] if out.extra_skipped else "no_task"
        return out

    def chat_line(self, item: Item) -> tuple[str, dict] | str:
        row = item.row
        reply, question, think = row.get("assistant_text") or "", row.get("user_text") or "", row.get("reasoning") or ""
        problem = text_problem(reply)
        if problem:
            return f"txt.{problem}"
        if not question.strip():
            return "question.empty"
        count = self.counter.count
        target = f"<think>{think}<think end>{reply}" if think else reply
        label = count(normalized(target)) + 1  # + eos
        if label > TOKEN_MAX:
            return "txt.too_many_tokens"
        seq = count(question) + item.user_seconds * 100 / 8 + label + INSTRUCT_OVERHEAD
        # source: real (an ingested recording) or synthetic; rows from before manifest format 3 have none
        extra: dict = {"question": question, **self.labels(row), "source": row.get("source") or "synthetic"}
        if row.get("group_id"):  # a contrast group: the same words in other voices, each with its own reply
            extra["group_id"] = row["group_id"]
        if think:
            extra["think_str"] = think
        if item.units is not None:
            if not item.units:
                return "speech_token.empty"
            if min(item.units) < 0 or max(item.units) >= 4096:
                raise RecipeError(f"S3 unit out of 0..4095 in {item.key}: wrong --tokenizer for this format")
            with_markers = len(item.units) + 2  # the loader wraps them in speech_token_num - 1
            if label * 0.8 >= with_markers:
                return "speech_token.too_few_for_text"
            seq += with_markers
            extra["speech_token"] = item.units
            task = "<S2TCHAT> <TEXT2TOKEN> <THINK>" if think else "<S2TCHAT> <TEXT2TOKEN>"
        else:
            task = "<S2TCHAT> <THINKER>" if think else "<S2TCHAT>"
        if seq > MAX_SEQ_LEN:
            return "seq_len.too_long"
        if item.assistant_wav is not None:
            extra["a_wav_path"] = str(item.assistant_wav)
        line = {"key": item.key, "wav": str(item.user_wav), "txt": reply, "task": task, "extra": extra}
        self.seq_of[item.key] = seq
        return f"{item.split}/data.list", line

    def understanding_line(self, item: Item, task: str) -> tuple[str, dict] | str:
        row = item.row
        text = row.get("user_text") or ""
        problem = text_problem(text)
        if problem:
            return f"txt.{problem}"
        if task != "transcribe" and ("<" in text or ">" in text):
            # use_50_per_change_if_only_X (ct_config.yaml) turns half of these lines into "<EMOTION>" etc. with
            # txt = the first "<...>" of txt (extract_first_content): the label must be the only one
            return "txt.angle_bracket"
        labels = self.labels(row)
        value = {"transcribe": None, "emotion": labels["q_emotion"], "gender": labels["gender"], "age": labels["age"]}[task]
        txt = text + (osum_tag(value) if value else "")
        label = self.counter.count(txt) + 1
        if label > TOKEN_MAX:
            return "txt.too_many_tokens"
        if PROMPT_TOKENS + item.user_seconds * 100 / 8 + label + INSTRUCT_OVERHEAD > MAX_SEQ_LEN:
            return "seq_len.too_long"
        line = {"key": f"{item.key}-{task}", "wav": str(item.user_wav), "txt": txt, "task": UNDERSTANDING_TAGS[task], "extra": labels}
        return f"{item.split}/data.list", line
