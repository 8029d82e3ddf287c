"""The report of a real tiny build, opened in headless Chromium: loads offline, every plot renders, audio plays.

Drives the system Chromium (/usr/bin/chromium) through playwright; playwright never downloads a browser.
Without Chromium or playwright this test fails in CI (CI set) and is skipped elsewhere."""

import json
import os
import shutil
from pathlib import Path

import pytest

from empathy_data.tools.report import SECTION_IDS
from tests.helpers import REPO

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"


def expected_figures(manifest: dict) -> set[str]:
    """The sections that must draw a figure for this build; the others say why they have none."""
    counts = manifest["counts"]
    drawn = {"targets", "distributions"}
    if manifest.get("checks"):  # the filter judged an exchange: its scores are in data/ or rejects/
        drawn |= {"checks", "wer", "cer", "durations", "emotion-check"}
    if manifest.get("script_checks"):  # the script judges ran
        drawn.add("script-checks")
    if counts["exchanges"]["accepted"]:
        drawn |= {"gender-age", "emotion-scenario", "regeneration", "speakers"}
    if counts["by_reason"]:
        drawn.add("reject-reasons")
    if any(isinstance(v, int | float) for v in (manifest.get("diversity") or {}).values()):
        drawn.add("diversity")
    if manifest.get("calibration"):  # the emotion check was measured before it gated
        drawn.add("calibration")
    if manifest.get("judge_calibration"):  # the script judge was measured before it judged
        drawn.add("judge-calibration")
    if manifest.get("ingested"):  # real recordings were mixed in
        drawn.add("sources")
    return drawn


def artifacts_dir() -> Path:
    path = Path(os.environ.get("PYTEST_ARTIFACTS") or REPO / "tests" / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def browser_or_skip():
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "playwright is not installed: pip install -e '.[dev]'"
    if problem is None and not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        problem = f"{CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"report browser test: {problem}")
        pytest.skip(problem)
    return sync_playwright


def test_report_of_a_real_build_renders_offline_in_chromium(tiny_build, tmp_path):
    sync_playwright = browser_or_skip()
    root, _, _ = tiny_build
    built = root / "out" / "report" / "index.html"
    assert built.is_file(), "the build did not write its report"
    # Open a copy, so the shared build stays as it was (a browser writes nothing there, but be sure).
    page_path = tmp_path / "report" / "index.html"
    page_path.parent.mkdir()
    shutil.copy(built, page_path)
    manifest = json.loads((root / "out" / "manifest.json").read_text())

    errors: list[str] = []
    failed: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: failed.append(f"{r.url[:120]}: {r.failure}"))
            page.on("request", lambda r: requests.append(r.url[:120]))
            page.goto(page_path.as_uri(), wait_until="load")

            ids = page.eval_on_selector_all("section", "nodes => nodes.map(n => n.id)")
            assert ids == list(SECTION_IDS)
            drawn = {
                section_id
                for section_id in ids
                if page.locator(f"section#{section_id} .plotly-graph-div .main-svg").count() > 0
            }
            for section_id in ids[:-1]:  # a section shows its figure or says why not (the last: samples)
                has_note = page.locator(f"section#{section_id} > p.note").count() > 0
                assert section_id in drawn or has_note, section_id
            expected = expected_figures(manifest)
            assert expected <= drawn, expected - drawn
            if "emotion-arcs" not in drawn:  # drawn only when a dialogue has two exchanges
                assert "two exchanges" in page.locator("section#emotion-arcs").inner_text()
            assert page.locator(".plotly-graph-div").count() == len(drawn)
            page.screenshot(path=str(artifacts_dir() / "report-tiny-build.png"), full_page=True)

            accepted = manifest["counts"]["exchanges"]["accepted"]
            assert accepted >= 1, "the build accepted no exchange: no sample to play (screenshot saved)"
            audio = page.locator("section#samples audio")
            assert audio.count() >= 2
            page.wait_for_function(
                "() => [...document.querySelectorAll('#samples audio')].some(a => a.readyState >= 1 && a.duration > 0)",
                timeout=10_000,
            )
            durations = page.eval_on_selector_all("#samples audio", "nodes => nodes.map(a => a.duration)")
            assert any(d > 0 for d in durations), durations
        finally:
            browser.close()
    assert not errors, errors
    assert not failed, failed
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
