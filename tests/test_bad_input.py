"""Bad input is refused before any model loads: one line naming file and field, nothing written."""

import shutil

import numpy as np
import pytest
import soundfile as sf

from empathy_data.errors import ConfigError
from tests.cli_helpers import run_cli
from tests.helpers import REPO, make_context, pool_with_clip


@pytest.fixture
def prompts(tmp_path):
    copy = tmp_path / "prompts"
    shutil.copytree(REPO / "prompts", copy, ignore=shutil.ignore_patterns("__init__.py", "__pycache__"))
    return copy


def test_unreadable_template(tmp_path, prompts):
    (prompts / "templates" / "user.en.j2").write_bytes(b"\xff\xfe broken")
    with pytest.raises(ConfigError, match=r"user\.en\.j2: unreadable template"):
        make_context(tmp_path, prompts_dir=str(prompts))


def test_template_syntax_error_names_the_line(tmp_path, prompts):
    (prompts / "templates" / "system.en.j2").write_text("ok\n{% for x in %}\n")
    with pytest.raises(ConfigError, match=r"system\.en\.j2:2: template syntax error"):
        make_context(tmp_path, prompts_dir=str(prompts))


def test_template_for_a_configured_language_is_missing(tmp_path, prompts):
    (prompts / "templates" / "user.zh.j2").unlink()
    with pytest.raises(ConfigError, match=r"user\.zh\.j2: unreadable template"):
        make_context(tmp_path, prompts_dir=str(prompts), languages={"en": 0.5, "zh": 0.5})


def test_vocabulary_without_a_description(tmp_path, prompts):
    (prompts / "vocabulary.yaml").write_text("emotions: {neutral: calm}\nresponse_styles: {}\n")
    with pytest.raises(ConfigError, match=r"vocabulary\.yaml: emotions.*no description"):
        make_context(tmp_path, prompts_dir=str(prompts))


def test_missing_scenario_list(tmp_path, prompts):
    (prompts / "scenarios" / "en.yaml").unlink()
    with pytest.raises(ConfigError, match=r"no scenario list for language 'en'"):
        make_context(tmp_path, prompts_dir=str(prompts))


def test_corrupt_speaker_audio(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    with pytest.raises(ConfigError, match=r"clips\.neutral\[0\].*a\.wav: does not decode"):
        make_context(tmp_path, speaker_pool=str(pool_with_clip(tmp_path, "a.wav")))


def test_unsupported_speaker_audio(tmp_path):
    (tmp_path / "a.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A " + b"\x00" * 64)
    with pytest.raises(ConfigError, match="does not decode"):
        make_context(tmp_path, speaker_pool=str(pool_with_clip(tmp_path, "a.m4a")))


def test_empty_speaker_audio(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(ConfigError, match="empty audio"):
        make_context(tmp_path, speaker_pool=str(pool_with_clip(tmp_path, "a.wav")))


def test_good_speaker_audio_loads(tmp_path):
    sf.write(tmp_path / "a.wav", np.ones(16000 * 4, np.float32) * 0.1, 16000)
    ctx = make_context(tmp_path, speaker_pool=str(pool_with_clip(tmp_path, "a.wav")))
    assert ctx.planner.pool.speakers[0].clips["neutral"][0].transcript == "hello"


@pytest.mark.parametrize(
    ("seconds", "rate", "problem"),
    [(0.2, 16000, "0.2 s, outside 3-15 s"), (20.0, 16000, "20.0 s, outside 3-15 s"), (4.0, 8000, "sample rate 8000")],
)
def test_clip_checked_wherever_a_pool_loads(tmp_path, seconds, rate, problem):
    sf.write(tmp_path / "a.wav", np.ones(int(rate * seconds), np.float32) * 0.1, rate)
    pool = pool_with_clip(tmp_path, "a.wav")
    with pytest.raises(ConfigError, match=rf"clips\.neutral\[0\].*{problem}"):
        make_context(tmp_path, speaker_pool=str(pool))
    config = tmp_path / "c.yaml"
    config.write_text(f"speaker_pool: {pool}\noutput: {tmp_path / 'out'}\n")
    for command in (["validate", str(config)], ["plan", str(config)], ["speakers", "list", str(pool)]):
        result = run_cli(*command)
        assert result.returncode == 2 and problem in result.stderr, command


def test_bad_pool_through_the_cli_is_exit_2_and_writes_nothing(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"not audio")
    pool = pool_with_clip(tmp_path, "a.wav")
    config = tmp_path / "c.yaml"
    config.write_text(f"speaker_pool: {pool}\noutput: {tmp_path / 'out'}\n")
    result = run_cli("build", str(config))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "pool.yaml: speakers[0].clips.neutral[0]" in result.stderr
    assert not (tmp_path / "out").exists()


def test_output_dir_with_foreign_files_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("keep me")
    config = tmp_path / "c.yaml"
    config.write_text(f"output: {tmp_path / 'out'}\n")
    result = run_cli("build", str(config))
    assert result.returncode == 2 and "not empty and holds no empathy-data build" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["precious.txt"]
