"""The backend registry: every backend a config can name is declared once, and built, keyed, preflighted
(judges included) and placed on a GPU through that declaration."""

from __future__ import annotations

import typing

import pytest

from empathy_data.backends import registry
from empathy_data.backends.spec import Backend
from empathy_data.config import model as config_model
from empathy_data.config.model import parse_config
from empathy_data.core.errors import BackendUnavailable
from empathy_data.runtime.preflight import check_libraries_and_models
from empathy_data.stages.script.llama_server import free_port
from empathy_data.weights.fingerprint import model_identity

UNIONS = {"tts": config_model.TTSConfig, "asr": config_model.ASRConfig, "emotion": config_model.EmotionConfig}


def kinds(union) -> set[str]:
    members = typing.get_args(typing.get_args(union)[0])
    return {value for member in members for value in typing.get_args(member.model_fields["backend"].annotation)}


@pytest.mark.parametrize("role", sorted(UNIONS))
def test_every_backend_a_config_can_name_is_declared(role):
    declared = {kind for r, kind in registry.REGISTRY if r == role}
    assert kinds(UNIONS[role]) == declared


def test_a_backend_is_declared_once():
    with pytest.raises(ValueError, match="declared twice"):
        registry.register(Backend("tts", "espeak", lambda config: None))
    with pytest.raises(ValueError, match="unknown role"):
        registry.register(Backend("vocoder", "x", lambda config: None))


def test_a_build_uses_its_judges_through_the_registry():
    config = parse_config({"filter": {"mos": {}}, "script": {"judge": {"base_url": "http://127.0.0.1:9/v1"}}})
    used = [(role, where) for role, where, _ in registry.in_use(config)]
    assert used == [("llm", "script"), ("llm", "script.judge"), ("topic", "script.topic"), ("tts", "synthesize.tts"),
                    ("asr", "filter.asr"), ("emotion", "filter.emotion"), ("speaker", "filter.speaker"),
                    ("mos", "filter.mos")]  # fmt: skip


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"filter": {"speaker": {"backend": "xvector", "model": "/nowhere/xvector"}}},
         "filter.speaker.model: /nowhere/xvector is not a directory"),
        ({"filter": {"mos": {"model": "/nowhere/sig_bak_ovr.onnx"}}},
         "filter.mos.model: model path /nowhere/sig_bak_ovr.onnx does not exist"),
        ({"script": {"topic": {"model": "/nowhere/minilm"}}}, "script.topic.model: /nowhere/minilm is not a directory"),
        ({"filter": {"asr": {"model": "/nowhere/whisper"}}}, "filter.asr.model: model path /nowhere/whisper does not exist"),
    ],
)  # fmt: skip
def test_preflight_checks_every_judge_before_anything_loads(settings, message):
    with pytest.raises(BackendUnavailable, match=message):
        check_libraries_and_models(parse_config(settings))


def test_an_unreachable_judge_server_is_one_line_naming_its_field():
    config = parse_config({"script": {"judge": {"base_url": f"http://127.0.0.1:{free_port()}/v1"}}})
    registry.preflight(config)  # libraries and paths are fine: only the server is missing
    with pytest.raises(BackendUnavailable, match=r"^script.judge.base_url: cannot reach the LLM server at http"):
        judge_only = config.model_copy(update={"script": config.script.model_copy(update={"base_url": None})})
        registry.check_servers(judge_only)


def test_each_stage_on_cuda_is_found_through_its_backends_declaration():
    config = parse_config({
        "filter": {"asr": {"device": "cuda"}, "speaker": {"service": {"url": "http://127.0.0.1:9"}, "device": "cuda"}},
        "synthesize": {"tts": {"backend": "xtts", "model_dir": "/m", "device": "cuda", "neutral_reference": True}},
    })  # fmt: skip
    assert registry.gpu_fields(config) == {"synthesize": "synthesize.tts.device", "filter": "filter.asr.device"}
    service_only = parse_config({"filter": {"speaker": {"service": {"url": "http://127.0.0.1:9"}, "device": "cuda"}}})
    assert registry.gpu_fields(service_only) == {}  # a service places its own model


def test_missing_weights_are_an_error_not_an_empty_fingerprint(tmp_path):
    with pytest.raises(BackendUnavailable, match="model path .*nowhere does not exist"):
        model_identity(str(tmp_path / "nowhere"))
