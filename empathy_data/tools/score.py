"""`empathy-data score EVALSET RESPONSES`: a model's replies to an evaluation set (eval_set.py), scored as
URO-Bench scores empathy.

RESPONSES is a JSONL file, one line per evaluation item: `key`, and the reply as `text`, `audio` (a path
relative to the file) or both. Each reply gets:

- **UnderEmotion**: an LLM judge on an OpenAI-compatible server (`--judge-url`) rates 1-5 how well the
  reply's words meet the user's words and emotion, given the corpus's reply as a reference
  (prompts/score/under_emotion.<language>.j2). A reply the judge answers malformed keeps its error.
- **GenEmotion**: the emotion check's probability of the reply's target emotion (the corpus reply's
  emotion) x (1 - error rate) x 100, where the error rate is the configured ASR's transcript of the
  reply audio against the reply text (WER; CER for Chinese). Only for an emotion check that gives a
  probability (a classifier, or a service hosting one); prosody does not.
- **MOS**: DNSMOS overall of the reply audio, when the config names a MOS judge.

Results: a table on stdout, `score.json` (every item, the means overall and per user emotion) and
`score.html` beside it. ASR, emotion check and MOS come from a build config's `filter` block (the
embedded defaults without one), built through the backend registry as a build builds them.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

import jinja2

from empathy_data.backends import registry as backends
from empathy_data.config.model import ClassifierEmotion, FilterConfig, OpenAIScript, ServiceEmotion
from empathy_data.core.atomic import write_text
from empathy_data.core.audio import read_audio, resample
from empathy_data.core.errors import EmpathyDataError, raise_if_infrastructure
from empathy_data.core.resources import builtin_dir
from empathy_data.stages.filter.asr import ASR_RATE
from empathy_data.stages.filter.base import EmotionItem
from empathy_data.stages.filter.metrics import error_rates

JUDGE_SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 5}, "why": {"type": "string"}},
    "required": ["score", "why"],
}
PROBABILITY_BACKENDS = {"transformers", "emotion2vec"}


class ScoreError(EmpathyDataError):
    """An evaluation set or responses file that cannot be scored: one line, file and line."""


@dataclass(frozen=True)
class Reply:
    key: str
    text: str | None
    audio: Path | None


@dataclass
class ItemScore:
    key: str
    emotion: str
    target_emotion: str | None
    language: str
    text: str | None
    transcript: str | None = None
    under_emotion: int | None = None
    judge_why: str | None = None
    error_rate: float | None = None
    p_target: float | None = None
    gen_emotion: float | None = None
    mos: float | None = None
    errors: list[str] = field(default_factory=list)


def read_eval_items(eval_dir: Path) -> list[dict[str, Any]]:
    path = eval_dir / "test.jsonl"
    if not path.is_file():
        raise ScoreError(f"{path}: not found (make one with `empathy-data eval-set OUT --to DIR`)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_replies(path: Path, keys: set[str]) -> dict[str, Reply]:
    if not path.is_file():
        raise ScoreError(f"{path}: not found")
    replies: dict[str, Reply] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except ValueError:
            raise ScoreError(f"{where}: not a JSON object") from None
        key = row.get("key") if isinstance(row, dict) else None
        if key not in keys:
            raise ScoreError(f"{where}: key {key!r} is not an item of the evaluation set")
        if key in replies:
            raise ScoreError(f"{where}: a second reply to {key!r}")
        text, audio = row.get("text"), row.get("audio")
        if text is None and audio is None:
            raise ScoreError(f"{where}: needs `text`, `audio` or both")
        audio_path = (path.parent / audio) if audio is not None else None
        if audio_path is not None and not audio_path.is_file():
            raise ScoreError(f"{where}: audio {audio_path} not found")
        replies[key] = Reply(key, text, audio_path)
    missing = sorted(keys - set(replies))
    if missing:
        raise ScoreError(f"{path}: no reply to {len(missing)} item(s), first {missing[0]!r}")
    return replies


def judge_templates(prompts_dir: Path | None) -> dict[str, jinja2.Template]:
    root = (prompts_dir or builtin_dir("empathy_data.prompts")) / "score"
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    found = {p.name.split(".")[1]: env.from_string(p.read_text(encoding="utf-8")) for p in root.glob("under_emotion.*.j2")}
    if not found:
        raise ScoreError(f"{root}: no under_emotion.<language>.j2 template")
    return found


def judge_reply(chat: Any, template: jinja2.Template, item: dict[str, Any], reply: str) -> tuple[int, str]:
    prompt = template.render(user=item["source_text"], emotion=item["emotion"], reference=item["target_text"], reply=reply)
    answer = chat.complete([{"role": "user", "content": prompt}], JUDGE_SCHEMA, 0)
    try:
        found = json.loads(str(answer))
        score = found["score"]
    except (ValueError, TypeError, KeyError):
        raise ValueError(f"judge: malformed reply {str(answer)[:80]!r}") from None
    if not isinstance(score, int) or not 1 <= score <= 5:
        raise ValueError(f"judge: score {score!r} is not 1-5")
    return score, str(found.get("why", ""))


def gives_probability(config: FilterConfig) -> bool:
    emotion = config.emotion
    if isinstance(emotion, ClassifierEmotion):
        return True
    if isinstance(emotion, ServiceEmotion):
        return backends.emotion_backend(config).identity.get("backend") in PROBABILITY_BACKENDS
    return False


def score_replies(
    items: list[dict[str, Any]], replies: dict[str, Reply], config: FilterConfig, judge: OpenAIScript | None,
    prompts_dir: Path | None = None, batch: int = 32,
) -> list[ItemScore]:
    """Every item scored (its errors kept with it), `batch` items at a time: only one batch's reply audio
    is held at once. An unreachable server or model raises."""
    templates = judge_templates(prompts_dir) if judge is not None else {}
    chat = backends.chat_backend(judge, judge.base_url) if judge is not None else None
    scores = []
    for start in range(0, len(items), batch):
        group = items[start : start + batch]
        found = [ItemScore(i["key"], i["emotion"], i.get("target_emotion"), i["language"], replies[i["key"]].text) for i in group]
        audio = {s.key: read_audio(replies[s.key].audio) for s in found if replies[s.key].audio is not None}
        _transcripts(found, audio, config)
        for item, score in zip(group, found, strict=True):
            reply = score.text if score.text is not None else score.transcript
            template = templates.get(score.language) or templates.get("en")
            if chat is not None and reply is not None and template is not None:
                try:
                    score.under_emotion, score.judge_why = judge_reply(chat, template, item, reply)
                except Exception as exc:  # the server's fault stops scoring in one line; a bad answer is the item's
                    raise_if_infrastructure(exc, f"judge {judge.base_url}")  # type: ignore[union-attr]
                    score.errors.append(str(exc) if isinstance(exc, ValueError) else f"judge: {type(exc).__name__}: {exc}")
            if score.text is not None and score.transcript is not None:
                wer, cer = error_rates(score.text, score.transcript, score.language)
                score.error_rate = round(cer if wer is None else wer, 4)
        _emotion_scores(found, audio, config)
        _mos_scores(found, audio, config)
        scores += found
    return scores


def _transcripts(scores: list[ItemScore], audio: dict, config: FilterConfig) -> None:
    heard_ones = [s for s in scores if s.key in audio]
    if not heard_ones:
        return
    clips = [resample(*audio[s.key], ASR_RATE) for s in heard_ones]
    heard = backends.asr_backend(config).transcribe(clips, [s.language for s in heard_ones])
    for score, transcript in zip(heard_ones, heard, strict=True):
        if isinstance(transcript, Exception):
            score.errors.append(f"asr: {transcript}")
        else:
            score.transcript = transcript


def _emotion_scores(scores: list[ItemScore], audio: dict, config: FilterConfig) -> None:
    judged = [s for s in scores if s.key in audio and s.target_emotion and s.error_rate is not None]
    if not judged or not config.thresholds.check_emotion or not gives_probability(config):
        return
    items = [EmotionItem(audio[s.key][0], None, audio[s.key][1], str(s.target_emotion)) for s in judged]
    for score, result in zip(judged, backends.emotion_backend(config).check_batch(items), strict=True):
        if isinstance(result, Exception):
            score.errors.append(f"emotion: {result}")
            continue
        score.p_target = round(result.score, 4)
        score.gen_emotion = round(result.score * (1 - min(1.0, float(score.error_rate or 0.0))) * 100, 2)


def _mos_scores(scores: list[ItemScore], audio: dict, config: FilterConfig) -> None:
    rated = [s for s in scores if s.key in audio]
    if config.mos is None or not rated:
        return
    results = backends.mos_backend(config.mos).score_batch([audio[s.key] for s in rated])
    for score, result in zip(rated, results, strict=True):
        if isinstance(result, Exception):
            score.errors.append(f"mos: {result}")
        else:
            score.mos = round(result.ovrl, 3)


METRICS = ("under_emotion", "gen_emotion", "error_rate", "mos")


def summarise(scores: list[ItemScore]) -> dict[str, Any]:
    def means(group: list[ItemScore]) -> dict[str, float | None]:
        found = {}
        for metric in METRICS:
            values = [getattr(s, metric) for s in group if getattr(s, metric) is not None]
            found[metric] = round(mean(values), 3) if values else None
        return found | {"items": len(group), "errors": sum(bool(s.errors) for s in group)}

    by_emotion: dict[str, list[ItemScore]] = defaultdict(list)
    for s in scores:
        by_emotion[s.emotion].append(s)
    return {"overall": means(scores), "by_emotion": {e: means(g) for e, g in sorted(by_emotion.items())}}


def write_results(scores: list[ItemScore], summary: dict[str, Any], to: Path) -> None:
    """score.json and score.html in `to` (each written atomically)."""
    to.mkdir(parents=True, exist_ok=True)
    payload = {"summary": summary, "items": [asdict(s) for s in scores]}
    write_text(to / "score.json", json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    write_text(to / "score.html", html_page(summary))


def html_page(summary: dict[str, Any]) -> str:
    header = "".join(f"<th>{html.escape(h)}</th>" for h in ("emotion", "items", *METRICS, "errors"))
    rows = []
    for name, found in [("all", summary["overall"]), *summary["by_emotion"].items()]:
        cells = [name, found["items"], *(found[m] if found[m] is not None else "-" for m in METRICS), found["errors"]]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    return (
        "<!doctype html><meta charset='utf-8'><title>empathy-data score</title>"
        "<style>body{font-family:sans-serif}td,th{padding:4px 10px;text-align:right}</style>"
        f"<h1>Scores</h1><table><tr>{header}</tr>{''.join(rows)}</table>\n"
    )
