"""`empathy-data report`: the page from a small synthetic build (no models, no browser)."""

import base64
import re

import pyarrow.parquet as pq
import pytest
from plotly.offline import get_plotlyjs

from empathy_data.tools.report import SECTION_IDS, ReportError, load_report_data, write_report
from empathy_data.tools.report import load as report_load
from empathy_data.tools.report.page import SECTIONS
from tests.cli_helpers import run_cli
from tests.corpus_builder import default_rows, flac, make_corpus, row


def section(page: str, section_id: str) -> str:
    match = re.search(rf'<section id="{section_id}">(.*?)</section>', page, re.S)
    assert match, section_id
    return match.group(1)


def test_every_section_has_its_figure_and_the_page_needs_no_network(tmp_path):
    out = make_corpus(tmp_path)
    path = write_report(out)
    assert path == out / "report" / "index.html"
    page = path.read_text(encoding="utf-8")
    for section_id in SECTION_IDS:
        assert f'<section id="{section_id}">' in page
    for s in SECTIONS:
        assert f'id="fig-{s.id}"' in section(page, s.id), s.id
    assert page.count('class="plotly-graph-div"') == len(SECTIONS)
    assert page.count(get_plotlyjs()[:500]) == 1  # plotly.js inline, once
    # nothing is fetched: outside plotly.js, every src/href is a data: URI or an in-page anchor
    ours = page.replace(get_plotlyjs(), "")
    assert not re.findall(r'(?:src|href)="(?!data:|#)', ours)
    assert "<link" not in ours and "@import" not in ours and "@font-face" not in ours and "http" not in ours
    assert not list(path.parent.glob(".*.tmp"))


def test_samples_are_playable_data_uris_with_text_and_labels(tmp_path):
    out = make_corpus(tmp_path)
    page = write_report(out).read_text(encoding="utf-8")
    samples = section(page, "samples")
    sources = re.findall(r'<audio controls preload="metadata" src="data:audio/flac;base64,([^"]+)"', samples)
    assert len(sources) == 2 * 4  # user and assistant audio of each of the 4 accepted exchanges
    assert base64.b64decode(sources[0]) == flac(1.0, 220.0)["bytes"]
    for text in ("user text d0 0", "assistant text d0 1", "reasoning d1 0", "spk-m", "comforting"):
        assert text in samples
    for emotion in ("sad", "angry", "happy", "neutral"):
        assert f"<h3>{emotion}</h3>" in samples


def test_at_most_two_samples_per_emotion(tmp_path):
    data = [row(f"d{i}", 0, "sad") for i in range(5)]
    data_out = load_report_data(make_corpus(tmp_path, data=data, rejects=[]))
    assert [r["dialogue_id"] for r in data_out.samples] == ["d0", "d1"]


def test_counts_transitions_and_scores_leave_replaced_versions_out(tmp_path):
    data = load_report_data(make_corpus(tmp_path))
    assert data.transitions == {("sad", "angry"): 1, ("neutral", "sad"): 1}  # not neutral -> disgusted (replaced)
    assert data.dialogues["planned"]["exchanges"] == {"2": 2, "1": 2}
    assert data.dialogues["accepted"]["exchanges"] == {"2": 1, "1": 1}  # d2 lost its second exchange
    assert data.dialogues["planned"]["user_emotion"] == {"sad": 1, "happy": 1, "neutral": 1, "fearful": 1}
    assert data.gender_age == {("female", "adult"): 3, ("male", "adult"): 1}
    assert data.speakers == {("spk-a", "train"): 3, ("spk-m", "test"): 1}
    assert data.quality["rejected"]["user_wer"] == [pytest.approx(0.9)]  # the failed row has no scores
    assert len(data.quality["accepted"]["user_wer"]) == 4
    assert data.history_clean == {True: 4}


def test_missing_optional_manifest_keys_and_columns_become_notes(tmp_path):
    out = make_corpus(tmp_path, target=False, diversity=False, history_clean=False, calibration=False, ingested=False,
                      judge_calibration=False)  # fmt: skip
    data = load_report_data(out)
    assert data.history_clean is None
    page = write_report(out).read_text(encoding="utf-8")
    assert "no distributions.target" in section(page, "targets")
    assert 'id="fig-targets"' in section(page, "targets")  # planned vs accepted still drawn
    assert "no diversity figures" in section(page, "diversity")
    assert "plotly-graph-div" not in section(page, "diversity")
    assert "no history_clean column" in section(page, "checks")
    assert "not calibrated" in section(page, "calibration")
    assert "No real recordings" in section(page, "sources")
    assert "not measured" in section(page, "judge-calibration")
    assert page.count('class="plotly-graph-div"') == len(SECTIONS) - 4


def test_a_build_without_accepted_exchanges_still_gets_a_page(tmp_path):
    _, rejects = default_rows()
    out = make_corpus(tmp_path, data=[], rejects=rejects)
    page = write_report(out).read_text(encoding="utf-8")
    for section_id in ("gender-age", "speakers", "samples"):
        assert "No accepted exchanges." in section(page, section_id)
    assert 'id="fig-reject-reasons"' in page and 'id="fig-wer"' in page  # rejected scores still plotted
    assert "history_clean: 0 of 0 accepted rows" in section(page, "checks")  # the column is there, no rows


def test_corpus_text_is_escaped(tmp_path):
    data, rejects = default_rows()
    data[0] |= {"user_text": "<script>alert(1)</script>", "scenario": "<img src=x onerror=alert(2)>"}
    page = write_report(make_corpus(tmp_path, data=data, rejects=rejects)).read_text(encoding="utf-8")
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page
    assert "&lt;b&gt;why&lt;/b&gt; does it" in section(page, "diversity")  # top openings table
    assert "report-test &lt;build&gt;" in page


def test_audio_is_read_only_for_the_sample_row_groups(tmp_path, monkeypatch):
    out = make_corpus(tmp_path, data=[row(f"d{i}", 0, "sad") for i in range(8)], rejects=[])
    reads: list[tuple[int, tuple[str, ...] | None]] = []

    class Spy(pq.ParquetFile):
        def read_row_group(self, i, columns=None, **kwargs):
            reads.append((i, tuple(columns) if columns is not None else None))
            return super().read_row_group(i, columns=columns, **kwargs)

    monkeypatch.setattr(report_load.pq, "ParquetFile", Spy)
    load_report_data(out)
    assert all(columns is not None for _, columns in reads)  # always a projection
    with_audio = [i for i, columns in reads if "user_audio" in columns]
    assert with_audio == [0]  # the two samples live in the first row group (2 rows per group)
    assert len(reads) == 4 + 1  # one pass over 4 row groups, then the sample group


def test_missing_shard_and_missing_manifest_are_report_errors(tmp_path):
    with pytest.raises(ReportError, match="manifest.json: missing"):
        write_report(tmp_path)
    out = make_corpus(tmp_path)
    (out / "data" / "test-00000-of-00001.parquet").unlink()
    with pytest.raises(ReportError, match="listed in manifest.json but missing"):
        write_report(out)


def test_report_command(tmp_path):
    out = make_corpus(tmp_path)
    result = run_cli("report", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out / "report" / "index.html")
    assert (out / "report" / "index.html").is_file()
    missing = run_cli("report", str(tmp_path / "nowhere"))
    assert missing.returncode == 1
    lines = missing.stderr.strip().splitlines()
    assert len(lines) == 1 and "manifest.json: missing" in lines[0]


def test_build_hook_writes_the_report_and_only_warns_when_it_cannot(tmp_path, monkeypatch):
    from empathy_data.flows import build as build_flow

    lines: list[tuple[str, str]] = []

    class Log:
        def info(self, message, *args):
            lines.append(("info", message % args))

        def warning(self, message, *args):
            lines.append(("warning", message % args))

    monkeypatch.setattr(build_flow, "log", Log())
    out = make_corpus(tmp_path)
    build_flow.write_build_report(out)
    assert (out / "report" / "index.html").is_file()
    assert lines[0][0] == "info" and str(out / "report" / "index.html") in lines[0][1]
    build_flow.write_build_report(tmp_path / "nowhere")  # no manifest: a warning, the build does not fail
    assert lines[1][0] == "warning" and lines[1][1].startswith("report: not written")
