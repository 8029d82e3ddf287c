"""Plotly figures of a build report. Each function takes ReportData and returns a figure, or None when
the build holds nothing to draw (the page then says why). Histograms and boxes are computed here
(numpy), so the page carries bins and quartiles, not one value per exchange."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from empathy_data.core.labels import AGE_GROUPS, EMOTIONS, GENDERS, LANGUAGES, RESPONSE_STYLES
from empathy_data.tools.report.load import DIALOGUE_LABELS, ReportData

VOCAB: dict[str, tuple[str, ...]] = {
    "language": LANGUAGES,
    "user_gender": GENDERS,
    "user_age_group": AGE_GROUPS,
    "user_emotion": EMOTIONS,
    "assistant_style": RESPONSE_STYLES,
}
EXCHANGE_LABELS = ("language", "user_gender", "user_age_group", "user_emotion", "assistant_style")
VERDICT_COLOURS = {"accepted": "#2a9d8f", "rejected": "#e76f51"}
SPLIT_COLOURS = ("#457b9d", "#e9c46a", "#e76f51", "#2a9d8f", "#8d99ae")
SERIES_COLOURS = {"target": "#8d99ae", "planned": "#457b9d", "accepted": "#2a9d8f", "real planned": "#e9c46a",
                  "real accepted": "#f4a261", "synthetic planned": "#457b9d", "synthetic accepted": "#2a9d8f"}  # fmt: skip


def styled(fig: go.Figure, title: str | None = None, **layout) -> go.Figure:
    margin = {"l": 60, "r": 20, "t": 90 if title else 40, "b": 60}
    return fig.update_layout(template="plotly_white", margin=margin, title=title, **layout)


def whole_counts(fig: go.Figure, top: float, **selector) -> None:
    """Count axes with few counts get a tick per whole number, not 0.5 steps."""
    if top <= 10:
        fig.update_yaxes(dtick=1, **selector)


def label(text: object) -> str:
    """Plotly renders a subset of HTML in text: show corpus strings literally."""
    return html.escape(str(text), quote=False)


def ordered(values: Iterable[str], vocab: Iterable[str] = ()) -> list[str]:
    """Vocabulary order first, then anything else sorted."""
    values = set(values)
    vocab = list(vocab)
    return [v for v in vocab if v in values] + sorted(v for v in values if v not in vocab)


def shares(counts: dict) -> dict[str, float]:
    total = sum(counts.values())
    return {str(k): v / total for k, v in counts.items()} if total else {}


def grouped_shares(
    labels: tuple[str, ...], series: dict[str, dict[str, dict[str, float]]], counted: set[str], title: str
) -> go.Figure:
    """Grouped bars per label, one bar per series, each series as shares of its own total.
    series: name -> label -> value -> count (or share, for names not in `counted`)."""
    rows = (len(labels) + 1) // 2
    fig = make_subplots(rows=rows, cols=2, subplot_titles=[label(n) for n in labels], vertical_spacing=0.35 / rows)
    for i, name in enumerate(labels):
        values = ordered([v for s in series.values() for v in s.get(name, {})], VOCAB.get(name, ()))
        if name == "exchanges":
            values = sorted(values, key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))
        for kind, by_label in series.items():
            raw = {str(k): v for k, v in by_label.get(name, {}).items()}
            share = shares(raw)
            count = f" (%{{customdata}} of {sum(raw.values())})" if kind in counted else ""
            fig.add_trace(
                go.Bar(
                    x=[label(v) for v in values],
                    y=[share.get(v, 0.0) for v in values],
                    name=kind,
                    legendgroup=kind,
                    showlegend=i == 0,
                    marker_color=SERIES_COLOURS[kind],
                    customdata=[raw.get(v, 0) for v in values],
                    hovertemplate=f"{kind}: %{{y:.1%}}{count}<extra></extra>",
                ),
                row=i // 2 + 1,
                col=i % 2 + 1,
            )
    fig.update_yaxes(tickformat=".0%")
    return styled(fig, title, barmode="group", height=120 + 280 * rows)


def targets(data: ReportData) -> go.Figure:
    """What the config asks for against what the plan holds and what was accepted, per dialogue."""
    target = data.manifest.distributions.get("target") or {}
    series = {"target": target} if target else {}
    series |= {"planned": data.dialogues.get("planned", {}), "accepted": data.dialogues.get("accepted", {})}
    title = "Share of dialogues (each bar of its own total; accepted: every exchange accepted)"
    return grouped_shares(DIALOGUE_LABELS, series, {"planned", "accepted"}, title)


def distributions(data: ReportData) -> go.Figure:
    """Planned vs accepted exchanges per label (manifest distributions)."""
    dists = data.manifest.distributions
    series = {"planned": dists.get("planned", {}), "accepted": dists.get("accepted", {})}
    return grouped_shares(EXCHANGE_LABELS, series, set(series), "Share of exchanges (each bar of its own total)")


def sources(data: ReportData) -> go.Figure | None:
    """Planned vs accepted exchanges per label, real recordings and synthetic dialogues apart (a build with
    `ingest:`; manifest distributions.by_source)."""
    by_source = data.manifest.distributions.get("by_source") or {}
    if not data.manifest.ingested or not by_source:
        return None
    series = {f"{source} {part}": found[part] for source, found in sorted(by_source.items()) for part in ("planned", "accepted")}
    return grouped_shares(EXCHANGE_LABELS, series, set(series), "Share of exchanges by source (each bar of its own total)")


def heatmap(
    counts: Counter,
    x_vocab: Iterable[str],
    y_vocab: Iterable[str],
    x_title: str,
    y_title: str,
    title: str | None = None,
) -> go.Figure | None:
    if not counts:
        return None
    xs = ordered({x for _, x in counts}, x_vocab)
    ys = ordered({y for y, _ in counts}, y_vocab)
    z = [[counts.get((y, x), 0) for x in xs] for y in ys]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[label(x) for x in xs],
            y=[label(y) for y in ys],
            colorscale="Blues",
            texttemplate="%{z}",
            hovertemplate=f"{y_title} %{{y}}, {x_title} %{{x}}: %{{z}}<extra></extra>",
            colorbar_title="count",
        )
    )
    height = max(320, (130 if title else 80) + 40 * len(ys))
    return styled(fig, title, xaxis_title=x_title, yaxis_title=y_title, height=height)


def gender_age(data: ReportData) -> go.Figure | None:
    return heatmap(data.gender_age, AGE_GROUPS, GENDERS, "user age group", "user gender")


def emotion_scenario(data: ReportData) -> go.Figure | None:
    return heatmap(data.emotion_scenario, (), EMOTIONS, "scenario", "user emotion")


def emotion_arcs(data: ReportData) -> go.Figure | None:
    title = "Transitions within planned dialogues (kept versions, accepted and not)"
    return heatmap(
        data.transitions, EMOTIONS, EMOTIONS, "user emotion at exchange k+1", "user emotion at exchange k", title
    )


def _binned(values: list[float], edges: np.ndarray) -> np.ndarray:
    return np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)[0]


def histograms(
    data: ReportData, fields: tuple[str, str], edges: np.ndarray, x_title: str, limits: Iterable[float], title: str
) -> go.Figure | None:
    """One panel per field (user, assistant); accepted and rejected exchanges overlaid, counts per bin."""
    if not any(data.quality[v].get(f) for v in ("accepted", "rejected") for f in fields):
        return None
    centres = (edges[:-1] + edges[1:]) / 2
    fig = make_subplots(rows=1, cols=2, subplot_titles=[label(f) for f in fields])
    shown: set[str] = set()
    top = 0
    for col, name in enumerate(fields, start=1):
        for verdict in ("accepted", "rejected"):
            values = data.quality[verdict].get(name, [])
            if not values:
                continue
            counts = _binned(values, edges)
            top = max(top, int(counts.max()))
            fig.add_trace(
                go.Bar(
                    x=centres,
                    y=counts,
                    width=np.diff(edges),
                    name=verdict,
                    legendgroup=verdict,
                    showlegend=verdict not in shown,
                    marker_color=VERDICT_COLOURS[verdict],
                    opacity=0.75,
                    hovertemplate=f"{verdict}: %{{y}} of {len(values)} near %{{x:.3g}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
            shown.add(verdict)
        for limit in limits:
            fig.add_vline(x=limit, line_dash="dash", line_color="#555", row=1, col=col)
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text="exchanges")
    whole_counts(fig, top)
    return styled(fig, title, barmode="overlay", height=420)


def _thresholds(data: ReportData) -> dict:
    return data.manifest.config.get("filter", {}).get("thresholds", {})


def error_rates(data: ReportData, metric: str) -> go.Figure | None:
    limit = _thresholds(data).get(f"max_{metric}")
    edges = np.linspace(0.0, 1.0, 51)
    title = f"{metric.upper()} against the script (values above 1 counted at 1; dashed: max_{metric})"
    limits = [limit] if limit is not None else []
    return histograms(data, (f"user_{metric}", f"assistant_{metric}"), edges, metric.upper(), limits, title)


def durations(data: ReportData) -> go.Figure | None:
    t = _thresholds(data)
    values = [v for q in data.quality.values() for f in ("user_duration", "assistant_duration") for v in q.get(f, [])]
    top = max([t.get("max_duration_s", 0.0), *values, 1.0])
    edges = np.linspace(0.0, float(np.ceil(top)), 41)
    limits = [x for x in (t.get("min_duration_s"), t.get("max_duration_s")) if x is not None]
    title = "Durations (dashed: configured min and max)"
    return histograms(data, ("user_duration", "assistant_duration"), edges, "seconds", limits, title)


def _box_stats(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=float)
    q1, median, q3 = np.percentile(v, [25, 50, 75])
    iqr = q3 - q1
    inside = v[(v >= q1 - 1.5 * iqr) & (v <= q3 + 1.5 * iqr)]
    return {
        "q1": q1,
        "median": median,
        "q3": q3,
        "lowerfence": inside.min(),
        "upperfence": inside.max(),
        "mean": v.mean(),
    }


def calibration(data: ReportData) -> go.Figure | None:
    """The emotion check's pass rates on probe clips of this build's TTS (manifest calibration)."""
    c = data.manifest.calibration
    if not c:
        return None
    emotions = c["emotions"]
    gated = set(c["gated"])
    z = [[c["matrix"][rendered][checked] for checked in emotions] for rendered in emotions]
    fig = go.Figure(go.Heatmap(
        z=z, x=[label(e) + (" (gates)" if e in gated else "") for e in emotions], y=[label(e) for e in emotions],
        zmin=0, zmax=1, colorscale="Blues", texttemplate="%{z:.2f}", colorbar_title="pass rate",
        hovertemplate="rendered %{y}, checked as %{x}: %{z:.2f}<extra></extra>",
    ))  # fmt: skip
    return styled(fig, None, xaxis_title="checked as", yaxis_title="rendered in", height=max(320, 80 + 40 * len(emotions)))


def judge_calibration(data: ReportData) -> go.Figure | None:
    """The script judge's agreement with the labelled cases per mode (manifest judge_calibration), against
    the floor it must reach to gate."""
    j = data.manifest.judge_calibration
    if not j:
        return None
    found = j["agreements"]
    ran = " (ran, gated)" if j["gates"] else " (ran, recorded)"
    fig = go.Figure(go.Bar(
        x=[a["mode"] + (ran if a["mode"] == j["mode"] else "") for a in found],
        y=[a["agree"] / a["cases"] for a in found],
        text=[f"{a['agree']}/{a['cases']}" for a in found], textposition="auto",
        customdata=[[f"{a['bad_caught']}/{a['bad']}", f"{a['good_passed']}/{a['good']}"] for a in found],
        hovertemplate="%{x}: agrees on %{text}; broken caught %{customdata[0]}, good passed %{customdata[1]}<extra></extra>",
    ))  # fmt: skip
    fig.add_hline(y=j["min_agreement"], line_dash="dot", annotation_text=f"min_agreement {j['min_agreement']}")
    return styled(fig, None, yaxis_title="agreement with the labels", yaxis_range=[0, 1.05], height=340)


def emotion_check(data: ReportData) -> go.Figure | None:
    """Emotion-check scores by the target user emotion, as boxes of quartiles per verdict."""
    fields = ("user_emotion_score", "user_arousal_shift")
    if not any(data.by_emotion.get(f) for f in fields):
        return None
    fig = make_subplots(rows=1, cols=2, subplot_titles=[label(f) for f in fields])
    for col, name in enumerate(fields, start=1):
        groups = data.by_emotion.get(name, {})
        for verdict in ("accepted", "rejected"):
            emotions = ordered({e for v, e in groups if v == verdict}, EMOTIONS)
            if not emotions:
                continue
            stats = [_box_stats(groups[(verdict, e)]) for e in emotions]
            fig.add_trace(
                go.Box(
                    x=[label(e) for e in emotions],
                    name=verdict,
                    legendgroup=verdict,
                    showlegend=col == 1,
                    marker_color=VERDICT_COLOURS[verdict],
                    **{k: [s[k] for s in stats] for k in stats[0]},
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="target user emotion")
    return styled(fig, "Emotion check by target user emotion", boxmode="group", height=440)


def checks(data: ReportData, key: str = "checks", unit: str = "utterances") -> go.Figure | None:
    found = data.manifest.checks if key == "checks" else data.manifest.script_checks
    if not found:
        return None
    names = sorted(found)
    outcomes = ordered({o for v in found.values() for o in v}, ("pass", "fail"))
    colours = {"pass": VERDICT_COLOURS["accepted"], "fail": VERDICT_COLOURS["rejected"]}
    fig = go.Figure(
        [
            go.Bar(
                y=[label(n) for n in names],
                x=[found[n].get(o, 0) for n in names],
                name=label(o),
                orientation="h",
                marker_color=colours.get(o),
            )
            for o in outcomes
        ]
    )
    height = max(300, 60 + 28 * len(names))
    return styled(fig, barmode="stack", height=height, xaxis_title=unit, showlegend=True)


def reject_reasons(data: ReportData) -> go.Figure | None:
    reasons = data.manifest.counts.by_reason
    if not reasons:
        return None
    names = sorted(reasons, key=lambda k: (reasons[k], k))
    fig = go.Figure(
        go.Bar(y=[label(n) for n in names], x=[reasons[n] for n in names], orientation="h", marker_color="#e76f51")
    )
    height = max(300, 60 + 28 * len(names))
    return styled(fig, height=height, xaxis_title="rejected or failed exchanges with this reason")


def regeneration(data: ReportData) -> go.Figure | None:
    counts = data.manifest.counts
    by_round = counts.regeneration.accepted_by_round
    if not by_round:
        return None
    last = max([int(r) for r in by_round] + [counts.regeneration.rounds])
    rounds = [str(r) for r in range(last + 1)]
    accepted = [by_round.get(r, 0) for r in rounds]
    planned = counts.exchanges.planned
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=rounds, y=accepted, name="accepted in round", marker_color="#2a9d8f"))
    if planned:
        fig.add_trace(
            go.Scatter(
                x=rounds,
                y=np.cumsum(accepted) / planned,
                name="accepted so far / planned",
                mode="lines+markers",
                marker_color="#e76f51",
            ),
            secondary_y=True,
        )
        fig.update_yaxes(
            title_text="share of planned exchanges",
            tickformat=".0%",
            range=[0, 1.05],
            tickmode="array",
            tickvals=[0, 0.25, 0.5, 0.75, 1.0],
            showgrid=False,
            secondary_y=True,
        )
    fig.update_xaxes(title_text="regeneration round", type="category")
    fig.update_yaxes(title_text="accepted exchanges", rangemode="tozero", secondary_y=False)
    whole_counts(fig, max(accepted), secondary_y=False)
    return styled(fig, height=360)


def speakers(data: ReportData) -> go.Figure | None:
    if not data.speakers:
        return None
    splits = ordered({s for _, s in data.speakers}, data.manifest.config.get("export", {}).get("splits", {}))
    totals: Counter[str] = Counter()
    first_split: dict[str, int] = {}
    for (speaker, split), n in data.speakers.items():
        totals[speaker] += n
        first_split[speaker] = min(first_split.get(speaker, len(splits)), splits.index(split))
    names = sorted(totals, key=lambda sp: (first_split[sp], -totals[sp], sp))
    fig = go.Figure(
        [
            go.Bar(
                x=[label(n) for n in names],
                y=[data.speakers.get((n, s), 0) for n in names],
                name=label(s),
                marker_color=SPLIT_COLOURS[i % len(SPLIT_COLOURS)],
            )
            for i, s in enumerate(splits)
        ]
    )
    whole_counts(fig, max(totals.values()))
    return styled(
        fig,
        barmode="stack",
        height=420,
        xaxis_title="user speaker",
        yaxis_title="accepted exchanges",
        legend={"title": "split", "traceorder": "normal"},
    )


DIVERSITY_METRICS = ("distinct_1", "distinct_2", "near_duplicate_rate")


def diversity(data: ReportData) -> go.Figure | None:
    found = data.manifest.diversity
    names = [n for n in DIVERSITY_METRICS if isinstance(found.get(n), int | float)]
    if not names:
        return None
    fig = go.Figure(go.Bar(x=names, y=[found[n] for n in names], marker_color="#457b9d", texttemplate="%{y:.3f}"))
    return styled(fig, height=320, yaxis_title="value", yaxis_range=[0, 1.05])
