"""Service backends against a fault-injecting test double (tests/fake_service.py): identity in the key,
faults as infrastructure (nothing cached), item errors as items, and GPU preflight."""

from __future__ import annotations

import pytest

from empathy_data.backends import registry as backends
from empathy_data.backends.service import (
    ServiceEmotionCheck,
    ServiceMOS,
    ServiceSpeakerEncoder,
    ServiceTranscriber,
    ServiceTTS,
)
from empathy_data.config.model import ServiceASR, ServiceEmotion, ServiceEndpoint, ServiceSynth, parse_config
from empathy_data.core.errors import ConfigError, InfrastructureError, is_infrastructure
from empathy_data.runtime.build import run_filter_chunk, run_script_chunk, run_synthesize_chunk
from empathy_data.runtime.preflight import check_gpu_stages
from empathy_data.stages.filter.base import EmotionItem, EmotionResult
from empathy_data.stages.filter.mos import MOSResult
from tests.fake_service import FakeService
from tests.helpers import FakeChat, make_context, sine


def service_context(tmp_path, tts_url: str, asr_url: str | None = None, out: str = "out"):
    overrides = {
        "output": str(tmp_path / out),
        "synthesize": {"tts": {"backend": "service", "url": tts_url, "request_retries": 0, "neutral_reference": True}},
    }
    if asr_url:
        overrides["filter"] = {"asr": {"backend": "service", "url": asr_url, "request_retries": 0}}
    return make_context(tmp_path, **overrides)


@pytest.fixture(autouse=True)
def _fresh_backends():
    yield
    backends.release(["synthesize", "filter"])


def test_the_key_follows_what_the_service_reports_not_its_address(tmp_path):
    with FakeService() as first, FakeService() as second:
        keys = service_context(tmp_path, first.url).layout.keys
        assert service_context(tmp_path, second.url).layout.keys == keys  # same model elsewhere: same chunks
        second.identity = {**second.identity, "model": {"weights": "b" * 32}}  # another model, same URL
        other = service_context(tmp_path, second.url, out="out2").layout.keys
    assert other["script"] == keys["script"]
    assert other["synthesize"] != keys["synthesize"] and other["filter"] != keys["filter"]
    assert all(request == "GET /info" for request in first.requests)  # the key needs no model call


def test_an_asr_service_report_is_in_the_filter_key(tmp_path):
    with FakeService() as tts, FakeService({"service": "asr", "backend": "faster-whisper", "model": "x"}) as asr:
        keys = service_context(tmp_path, tts.url, asr.url).layout.keys
        asr.identity = {**asr.identity, "model": "whisper-large-v3"}
        other = service_context(tmp_path, tts.url, asr.url, out="out2").layout.keys
    assert other["synthesize"] == keys["synthesize"] and other["filter"] != keys["filter"]


def test_a_server_without_info_is_identified_by_its_models():
    with FakeService() as vllm_like:
        vllm_like.identity = None  # no /info, like `vllm serve`
        identity = ServiceTranscriber(ServiceASR(url=vllm_like.url, model="whisper-large-v3")).identity
        assert identity == {"backend": "openai-transcriptions", "version": "0.33.0",
                            "models": [{"id": "whisper-large-v3", "root": "/models/whisper-large-v3"}]}  # fmt: skip
        with pytest.raises(
            InfrastructureError, match="serves no model 'whisper-base' \\(it serves: whisper-large-v3\\)"
        ):
            ServiceTranscriber(ServiceASR(url=vllm_like.url, model="whisper-base", request_retries=0)).identity  # noqa: B018


def test_a_service_that_is_not_ours_is_one_line():
    with FakeService() as other:
        other.identity = None
        with pytest.raises(
            InfrastructureError, match="GET /info has no `identity`: is this an empathy-data model service"
        ):
            ServiceTTS(ServiceSynth(url=other.url, request_retries=0))


@pytest.mark.parametrize("fault", ["500", "drop", "cuda-library"])
def test_a_service_fault_fails_the_chunk_and_caches_nothing(tmp_path, fault):
    with FakeService() as service:
        ctx = service_context(tmp_path, service.url)
        run_script_chunk(ctx, 0, lambda: FakeChat())
        service.fault = fault
        with pytest.raises(InfrastructureError, match=f"synthesize.tts.url: service {service.url}") as raised:
            run_synthesize_chunk(ctx, 0, lambda: backends.tts_backend(ctx.config.synthesize))
        assert len(str(raised.value).splitlines()) == 1
        assert not ctx.layout.is_done("synthesize", 0)
        assert not list((tmp_path / "out" / "work" / "synthesize").glob("*"))
        service.fault = None  # the service is back: the same chunk now renders
        ref = run_synthesize_chunk(ctx, 0, lambda: backends.tts_backend(ctx.config.synthesize))
    assert ref.counts.get("failed", 0) == 0 and ctx.layout.is_done("synthesize", 0)


def test_an_item_error_fails_that_dialogue_only(tmp_path):
    with FakeService() as service:
        ctx = service_context(tmp_path, service.url)
        run_script_chunk(ctx, 0, lambda: FakeChat())
        service.fault = "item"
        run_synthesize_chunk(ctx, 0, lambda: backends.tts_backend(ctx.config.synthesize))
    outcomes = ctx.layout.read_chunk("synthesize", 0).outcomes
    assert outcomes and all(o.verdict == "failed" and "no speakable" in str(o.reasons[0]) for o in outcomes)


def test_asr_service_faults_fail_the_filter_chunk(tmp_path):
    with FakeService() as tts, FakeService({"service": "asr", "backend": "faster-whisper"}) as asr:
        ctx = service_context(tmp_path, tts.url, asr.url)
        run_script_chunk(ctx, 0, lambda: FakeChat())
        run_synthesize_chunk(ctx, 0, lambda: backends.tts_backend(ctx.config.synthesize))
        asr.fault = "drop"
        with pytest.raises(InfrastructureError, match="filter.asr.url"):
            run_filter_chunk(ctx, 0, lambda: (backends.asr_backend(ctx.config.filter), None))
        assert not ctx.layout.is_done("filter", 0)
        asr.fault = None
        run_filter_chunk(ctx, 0, lambda: (backends.asr_backend(ctx.config.filter), None))
    assert ctx.layout.is_done("filter", 0)
    assert any(r.startswith("POST /v1/audio/transcriptions") for r in asr.requests)


def test_clients_keep_requests_in_flight_and_answers_in_order():
    with FakeService() as service:
        tts = ServiceTTS(ServiceSynth(url=service.url, max_in_flight=4))
        asr = ServiceTranscriber(ServiceASR(url=service.url, max_in_flight=4))
        from empathy_data.records.schema import Speaker
        from empathy_data.stages.synthesize.base import TTSRequest

        speaker = Speaker(id="s", gender="female", age_group="adult", language="en")
        dialogues = [[TTSRequest(f"turn {d} {t}", "en", speaker, None, None) for t in range(d + 1)] for d in range(6)]
        rendered = list(tts.synthesize_many(dialogues))
        texts = asr.transcribe([sine() for _ in range(5)], ["en"] * 5)
    assert [len(r) for r in rendered] == [1, 2, 3, 4, 5, 6]
    assert texts == ["hello there"] * 5


def test_an_emotion_service_judges_each_clip_and_its_faults_are_infrastructure():
    with FakeService({"service": "emotion", "backend": "emotion2vec"}) as service:
        check = ServiceEmotionCheck(ServiceEmotion(url=service.url, request_retries=0))
        items = [EmotionItem(sine(), sine() if e == "sad" else None, 16000, e) for e in ("sad", "angry")]
        results = check.check_batch(items)
        assert results == [EmotionResult(True, 0.25, 0.125, "sad"), EmotionResult(False, 0.25, 0.125, "sad")]
        service.fault = "500"
        with pytest.raises(InfrastructureError, match="filter.emotion.url"):
            check.check_batch(items)
        service.fault = "item"
        assert all(isinstance(r, Exception) for r in check.check_batch(items))


def test_speaker_and_mos_judges_at_a_service(tmp_path):
    with (
        FakeService({"service": "speaker", "backend": "resemblyzer"}) as speaker,
        FakeService({"service": "mos"}) as mos,
    ):
        encoder = ServiceSpeakerEncoder(ServiceEndpoint(url=speaker.url))
        scorer = ServiceMOS(ServiceEndpoint(url=mos.url))
        vectors = encoder.embed_batch([(sine(), 16000), (sine(300), 16000)])
        assert [v.tolist() for v in vectors] == [[pytest.approx(0.6), pytest.approx(0.8), 0.0]] * 2
        assert scorer.score_batch([(sine(), 16000)]) == [MOSResult(ovrl=3.25, sig=3.5, bak=4.0)]
        mos.fault = "drop"
        with pytest.raises(InfrastructureError, match="filter.mos.service.url"):
            scorer.score_batch([(sine(), 16000)])
        mos.fault = None
        with FakeService() as tts:
            judged = {"speaker": {"service": {"url": speaker.url}}, "mos": {"service": {"url": mos.url}}}
            keys = make_context(tmp_path, synthesize={"tts": {"backend": "service", "url": tts.url, "neutral_reference": True}},
                                filter=judged).layout.keys  # fmt: skip
            speaker.identity = {**speaker.identity, "backend": "xvector"}
            other = make_context(tmp_path, output=str(tmp_path / "o2"), filter=judged,
                                 synthesize={"tts": {"backend": "service", "url": tts.url, "neutral_reference": True}}).layout.keys  # fmt: skip
    assert other["synthesize"] == keys["synthesize"] and other["filter"] != keys["filter"]


def test_a_missing_cuda_library_reads_as_infrastructure():
    assert is_infrastructure(RuntimeError("Library libcublas.so.12 is not found or cannot be loaded"))
    assert is_infrastructure(OSError("libcudnn_ops.so.9: cannot open shared object file: No such file"))
    assert is_infrastructure(RuntimeError("libcudnn.so.9: cannot open shared object file"))
    assert not is_infrastructure(ValueError("text has no speakable characters"))


def gpu_config(runner: dict, resources: dict | None = None):
    data = {"filter": {"asr": {"backend": "faster-whisper", "device": "cuda"}}, "runner": runner}
    if resources:
        data["resources"] = resources
    return parse_config(data)


def test_preflight_refuses_a_cuda_stage_that_sees_no_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(
        ConfigError,
        match=r"filter.asr.device: runs a model on CUDA, but no GPU is visible here \(CUDA_VISIBLE_DEVICES=''\)",
    ):
        check_gpu_stages(gpu_config({"kind": "thread"}), visible=0)
    check_gpu_stages(gpu_config({"kind": "thread"}), visible=1)


def test_preflight_refuses_a_cuda_stage_that_ray_would_hide_the_gpu_from():
    with pytest.raises(
        ConfigError, match=r"resources.filter.gpus: is 0, but filter.asr.device runs a model on CUDA: ray"
    ):
        check_gpu_stages(gpu_config({"kind": "ray", "address": "auto"}), visible=1)
    check_gpu_stages(gpu_config({"kind": "ray", "address": "auto"}, {"filter": {"gpus": 0.5}}), visible=0)
    check_gpu_stages(parse_config({"runner": {"kind": "ray"}}), visible=0)  # CPU stages ask for nothing
