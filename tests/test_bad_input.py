"""Bad input is refused before any model loads: one line naming file and field, nothing written."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import yaml

from empathy_data.config.model import parse_config
from empathy_data.core.errors import ConfigError
from empathy_data.runtime.preflight import check_libraries_and_models
from empathy_data.store.output_guard import check_no_shrink, claim_output_dir
from tests.cli_helpers import run_cli
from tests.corpus_builder import make_corpus
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


@pytest.mark.parametrize(
    ("tts", "message"),
    [
        ({"backend": "xtts", "model_dir": "MODEL", "accept_license": True},
         "synthesize.tts: needs TTS, torchaudio: run XTTS as a service (services/README.md)"),
        ({"backend": "cosyvoice2", "model_dir": "MODEL"}, "synthesize.tts: cosyvoice2 needs the CosyVoice repository"),
        ({"backend": "xtts", "model_dir": "MISSING"}, "synthesize.tts.model_dir: "),
    ],
)
def test_missing_tts_library_or_model_is_refused_before_the_output_exists(tmp_path, tts, message):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    tts = {k: str(model if v == "MODEL" else tmp_path / "nope" if v == "MISSING" else v) if k == "model_dir" else v
           for k, v in tts.items()}  # fmt: skip
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {"output": str(tmp_path / "out"), "synthesize": {"tts": {**tts, "neutral_reference": True}}}
        )
    )
    for command in ("build", "validate"):
        result = run_cli(command, str(config))
        assert result.returncode == 1, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


def test_xtts_licence_must_be_accepted_by_the_user(tmp_path, monkeypatch):
    monkeypatch.delenv("COQUI_TOS_AGREED", raising=False)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    config = parse_config({"synthesize": {"tts": {"backend": "xtts", "model_dir": str(model), "neutral_reference": True}}})
    monkeypatch.setattr("empathy_data.backends.spec.find_spec", lambda name: object())  # as if coqui-tts were installed
    with pytest.raises(ConfigError, match="synthesize.tts.accept_license: XTTS-v2 weights are under the Coqui"):
        check_libraries_and_models(config)
    monkeypatch.setenv("COQUI_TOS_AGREED", "1")  # the user's own environment accepts it
    check_libraries_and_models(config)


def test_unreachable_llm_server_fails_validate(tmp_path):
    from empathy_data.stages.script.llama_server import free_port

    config = tmp_path / "c.yaml"
    config.write_text(f"script: {{base_url: 'http://127.0.0.1:{free_port()}/v1'}}\n")
    result = run_cli("validate", str(config))
    assert result.returncode == 1 and "cannot reach the LLM server at http://127.0.0.1" in result.stderr
    assert run_cli("validate", str(config), "--no-check-servers").returncode == 0


def test_bad_flag_value_is_reported_against_the_flag(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"output: {tmp_path / 'out'}\n")
    result = run_cli("build", str(config), "--num-dialogues", "0")
    assert result.returncode == 2 and "--num-dialogues" in result.stderr and "c.yaml" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_smaller_num_dialogues_refuses_to_shrink_an_exported_corpus(tmp_path):
    out = tmp_path / "out"
    ctx = make_context(tmp_path, num_dialogues=8)
    claim_output_dir(ctx.store, ctx.planner.key, ctx.config.name)
    manifest = json.loads((make_corpus(tmp_path / "other") / "manifest.json").read_text())
    manifest["counts"]["dialogues"] = {"planned": 8, "accepted": 8, "rejected": 0, "failed": 0}
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="already holds a corpus of 8 dialogues.*--allow-shrink"):
        check_no_shrink(ctx.store, 1)
    check_no_shrink(ctx.store, 12)  # growing is fine
    manifest["counts"]["dialogues"]["planned"] = 10
    manifest["counts"]["topup"] = {"passes": 1, "dialogues": 2, "budget": 2}
    (out / "manifest.json").write_text(json.dumps(manifest))
    check_no_shrink(ctx.store, 8)  # the same size again: its top-up is no shrink
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"name": "t", "seed": 3, "output": str(out)}))
    result = run_cli("build", str(config), "--num-dialogues", "1")
    assert result.returncode == 2 and "--allow-shrink" in result.stderr
