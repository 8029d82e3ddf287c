"""The report page: one self-contained HTML file (plotly.js inline once, audio as data: URIs, no network)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from empathy_data.core.atomic import write_text
from empathy_data.core.labels import EMOTIONS
from empathy_data.tools.report import figures
from empathy_data.tools.report.load import ReportData, load_report_data

PLOT_CONFIG = {"displaylogo": False, "responsive": True}
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #222; background: #fafafa; }
header, main { max-width: 1200px; margin: 0 auto; padding: 0 1.5rem; }
header { padding-top: 1rem; }
section { background: #fff; border: 1px solid #e3e3e3; border-radius: 6px; margin: 1.2rem 0; padding: 0.8rem 1.2rem; }
h2 { margin: 0.2rem 0 0.4rem; font-size: 1.25rem; }
p.about { color: #555; margin: 0.2rem 0 0.6rem; }
p.note { color: #8a5a00; background: #fff7e0; padding: 0.4rem 0.6rem; border-radius: 4px; }
table { border-collapse: collapse; margin: 0.4rem 0; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
nav a { margin-right: 0.8rem; }
article.sample { border-top: 1px solid #eee; padding: 0.6rem 0; }
article.sample h4 { margin: 0.2rem 0; }
.labels { color: #555; font-size: 0.9rem; }
.turn { margin: 0.4rem 0; }
.turn audio { display: block; margin-top: 0.2rem; }
"""


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    about: str
    figure: Callable[[ReportData], go.Figure | None]
    missing: str  # shown instead of the figure when there is nothing to draw


SECTIONS = (
    Section("targets", "Target vs planned vs accepted dialogues", "Labels the plan allocates per dialogue "
            "(user emotion: the first exchange's), from data/ and rejects/.", figures.targets, ""),
    Section("distributions", "Planned vs accepted exchanges", "Every exchange's labels (manifest distributions).",
            figures.distributions, ""),
    Section("sources", "Real vs synthetic", "Planned and accepted exchanges of the dialogues built on ingested "
            "recordings (source real) and of the synthetic ones, per label.", figures.sources,
            "No real recordings in this build (no ingest block)."),
    Section("gender-age", "User gender x age group", "Accepted exchanges.", figures.gender_age,
            "No accepted exchanges."),
    Section("emotion-scenario", "User emotion x scenario", "Accepted exchanges.", figures.emotion_scenario,
            "No accepted exchanges."),
    Section("emotion-arcs", "Emotion arcs", "User emotion at exchange k followed by exchange k+1 in the same dialogue, "
            "from data/ and rejects/ (versions each dialogue keeps).", figures.emotion_arcs,
            "No dialogue has two exchanges."),
    Section("wer", "Word error rate", "ASR of each turn against its script.",
            lambda d: figures.error_rates(d, "wer"), "No WER scores in the shards."),
    Section("cer", "Character error rate", "ASR of each turn against its script.",
            lambda d: figures.error_rates(d, "cer"), "No CER scores in the shards."),
    Section("durations", "Durations", "Length of each rendered turn.", figures.durations,
            "No durations in the shards."),
    Section("emotion-check", "Emotion check", "Scores of the user turn's emotion check by its target emotion.",
            figures.emotion_check, "No emotion-check scores in the shards."),
    Section("calibration", "Emotion check calibration", "How often the emotion check passed probe clips this "
            "build's TTS rendered in each emotion (rows) when asked about each emotion (columns); it gates only "
            "the emotions marked (gates), whose recall and precision reached the configured floors.",
            figures.calibration, "The emotion check was not calibrated (no check, or both floors null)."),
    Section("judge-calibration", "Script judge calibration", "How often the script judge's verdict on each "
            "hand-labelled script (prompts/judge_cases.yaml) matched its label, per mode: broken scripts it "
            "rejected and good ones it passed. It gates only where its agreement reached script.judge.min_agreement.",
            figures.judge_calibration, "The script judge was not measured (judge off, or min_agreement null)."),
    Section("script-checks", "Script judges", "Outcome of each script-stage check over every attempt, before any "
            "audio (manifest script_checks): validation rules, topic drift, the LLM judge per criterion.",
            lambda d: figures.checks(d, "script_checks", "script attempts"), "The manifest has no script check counts."),
    Section("checks", "Filter checks", "Outcome of each check over the utterances the filter judged (manifest "
            "checks): ASR, duration, silence, emotion, speaker consistency, voice distinctness, MOS.",
            figures.checks, "The manifest has no check counts."),
    Section("reject-reasons", "Reject reasons", "Rejected or failed exchanges per kind of reason "
            "(an exchange with two kinds counts under both).", figures.reject_reasons,
            "No rejected or failed exchanges."),
    Section("regeneration", "Acceptance by regeneration round", "Accepted exchanges by the round that wrote them.",
            figures.regeneration, "No accepted exchanges."),
    Section("speakers", "Exchanges per user speaker", "Accepted exchanges, coloured by split.", figures.speakers,
            "No accepted exchanges."),
    Section("diversity", "Diversity", "Text diversity measures recorded in manifest.json (diversity).",
            figures.diversity, "The manifest has no diversity figures (built before they were recorded)."),
)  # fmt: skip
SECTION_IDS = (*(s.id for s in SECTIONS), "samples")


def audio_mime(data: bytes, path: str | None = None) -> str:
    if data.startswith(b"fLaC"):
        return "audio/flac"
    if data.startswith(b"RIFF"):
        return "audio/wav"
    if data.startswith(b"OggS"):
        return "audio/ogg"
    return {"mp3": "audio/mpeg", "wav": "audio/wav", "flac": "audio/flac"}.get((path or "").rsplit(".", 1)[-1], "")


def audio_tag(value: dict | None) -> str:
    if not value or not value.get("bytes"):
        return '<p class="note">no audio</p>'
    mime = audio_mime(value["bytes"], value.get("path")) or "audio/flac"
    source = f"data:{mime};base64,{base64.b64encode(value['bytes']).decode('ascii')}"
    return f'<audio controls preload="metadata" src="{source}"></audio>'


def _table(head: list[str], rows: list[list[object]]) -> str:
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def header(data: ReportData) -> str:
    m = data.manifest
    counts = m.counts
    units = [
        [unit, c.planned, c.accepted, c.rejected, c.failed]
        for unit, c in (("dialogues", counts.dialogues), ("exchanges", counts.exchanges))
    ]
    splits = ", ".join(f"{s} {n}" for s, n in counts.by_split.items()) or "none"
    regen = counts.regeneration
    facts = [
        f"plan key {m.plan_key}",
        f"languages {', '.join(m.config.get('languages', {})) or '?'}",
        f"accepted exchanges by split: {splits}",
        f"regeneration rounds {regen.rounds}, {regen.exchanges_replaced} replaced exchange(s)",
    ]
    nav = "".join(f'<a href="#{i}">{escape(i)}</a>' for i in SECTION_IDS)
    return (
        f"<header><h1>Build report: {escape(data.name)}</h1>"
        f"<p>{escape('; '.join(facts))}</p>"
        f"{_table(['unit', 'planned', 'accepted', 'rejected', 'failed'], units)}"
        f"<nav>{nav}</nav></header>"
    )


def extras(section_id: str, data: ReportData) -> str:
    """Text that goes with a figure: a missing target, history_clean counts, top openings."""
    if section_id == "targets" and not data.manifest.distributions.get("target"):
        return '<p class="note">The manifest has no distributions.target (built before it was recorded): no target bars.</p>'
    if section_id == "checks":
        if data.history_clean is None:
            return '<p class="note">The shards have no history_clean column (built before it was recorded).</p>'
        clean, total = data.history_clean[True], sum(data.history_clean.values())
        return f'<p class="about">history_clean: {clean} of {total} accepted rows.</p>'
    if section_id == "diversity":
        openings = data.manifest.diversity.get("top_openings")
        if openings:
            rows = [[text, count] for text, count in openings]
            return "<h3>Most frequent openings</h3>" + _table(["opening", "count"], rows)
    return ""


def section_html(section: Section, data: ReportData) -> str:
    fig = section.figure(data)
    body = (
        fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig-{section.id}", config=PLOT_CONFIG)
        if fig is not None
        else f'<p class="note">{escape(section.missing)}</p>'
    )
    return (
        f'<section id="{section.id}"><h2>{escape(section.title)}</h2>'
        f'<p class="about">{escape(section.about)}</p>{extras(section.id, data)}{body}</section>'
    )


def sample_html(row: dict) -> str:
    quality = row.get("quality") or {}
    scores = ", ".join(f"{k} {v:.3g}" if isinstance(v, int | float) else f"{k}: {v}" for k, v in quality.items() if v is not None)
    labels = (
        f"{row.get('language')} · scenario {row.get('scenario')} · user {row.get('user_speaker_id')} "
        f"({row.get('user_gender')}, {row.get('user_age_group')}) · style {row.get('assistant_style')} · "
        f"split {row.get('split')}"
    )
    history = row.get("history") or []
    context = (
        "<details><summary>history</summary>"
        + "".join(f"<p><b>{escape(t['role'])}:</b> {escape(t['text'])}</p>" for t in history)
        + "</details>"
        if history
        else ""
    )
    return (
        f'<article class="sample"><h4>{escape(row["dialogue_id"])} · exchange {row["exchange_index"]}</h4>'
        f'<p class="labels">{escape(labels)}</p>{context}'
        f'<div class="turn"><b>User ({escape(str(row.get("user_emotion")))}):</b> {escape(row.get("user_text") or "")}'
        f"{audio_tag(row.get('user_audio'))}</div>"
        f'<div class="turn"><b>Assistant:</b> {escape(row.get("assistant_text") or "")}'
        f"{audio_tag(row.get('assistant_audio'))}</div>"
        f"<p><b>Reasoning:</b> {escape(row.get('reasoning') or '')}</p>"
        f'<p class="labels">{escape(scores)}</p></article>'
    )


def samples_html(data: ReportData) -> str:
    parts = []
    for emotion in figures.ordered({r["user_emotion"] for r in data.samples}, EMOTIONS):
        rows = [r for r in data.samples if r["user_emotion"] == emotion]
        parts.append(f"<h3>{escape(emotion)}</h3>" + "".join(sample_html(r) for r in rows))
    body = "".join(parts) or '<p class="note">No accepted exchanges.</p>'
    return (
        '<section id="samples"><h2>Sample exchanges</h2>'
        '<p class="about">Up to two accepted exchanges per user emotion, with their audio.</p>'
        f"{body}</section>"
    )


def render(data: ReportData) -> str:
    sections = "".join(section_html(s, data) for s in SECTIONS)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(data.name)} — build report</title><style>{STYLE}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head>'
        f"<body>{header(data)}<main>{sections}{samples_html(data)}</main></body></html>\n"
    )


def write_report(out: Path) -> Path:
    """Write OUT/report/index.html (atomically) from OUT's manifest and shards; return its path."""
    out = Path(out)
    page = render(load_report_data(out))
    target = out / "report" / "index.html"
    write_text(target, page)
    return target
