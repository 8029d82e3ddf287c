"""Ray Serve applications that host this package's TTS and ASR backends as long-lived services.

Runs in a service environment (services/README.md): Ray Serve, the model's own libraries and this
package installed without its dependencies. Each replica builds its backend once (`loads` in /info) and
keeps it warm; `@serve.batch` gathers requests from every chunk task of every build into batches of up
to `max_batch_size`, waiting at most `batch_wait_timeout_s` for company. Both settings, replicas, GPUs
and CPUs per replica are the application's args (Serve config files: `import_path:
empathy_data.serving.apps:tts_app`, `args: {...}`).

Batching and determinism: the TTS service renders each dialogue of a batch as its own call (as the
build does in-process), so audio never depends on batch company. The ASR service hands a batch of clips
to the backend at once; faster-whisper's batched path gives the transcripts one-at-a-time decoding gives
on CPU (tests/test_trust_units.py), while a GPU's batched kernels may round differently: a resumed build
stays byte-identical because finished chunks are never scored again, not because scores would repeat.
"""

import asyncio
import os
import threading
from collections import Counter
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from ray import serve

from empathy_data.backends.service import ASR_RATE, CALLER_HEADER
from empathy_data.backends.wire import (
    decode_audio,
    emotion_item_from_json,
    emotion_result_to_json,
    encode_audio,
    read_wav,
    tts_request_from_json,
)
from empathy_data.config.model import (
    ASRConfig,
    EmotionConfig,
    FilterConfig,
    MOSCheck,
    SpeakerCheck,
    Strict,
    SynthesizeConfig,
    TTSConfig,
)
from empathy_data.weights.embedded_models import WHISPER_SHA256
from empathy_data.weights.fingerprint import (
    library_versions,
    model_identity,
)

MODEL_FIELDS = ("model", "model_dir", "repo_dir")


def libraries_of(role: str, config) -> tuple[str, ...]:
    """The libraries whose versions decide a hosted backend's output, as its declaration names them."""
    from empathy_data.backends.registry import declared

    return declared(role, config).libraries
SPEED_ONLY = {"device", "cpu_threads", "accept_license"}  # where and how fast, not what comes out


class ServiceArgs(Strict):
    """An application's args: the batching and placement of its deployment."""

    max_batch_size: int = Field(default=8, ge=1)
    batch_wait_timeout_s: float = Field(default=0.02, ge=0)
    num_replicas: int = Field(default=1, ge=1)
    num_gpus: float = Field(default=0.0, ge=0)
    num_cpus: float = Field(default=1.0, ge=0)
    max_ongoing_requests: int = Field(default=64, ge=1)


class TTSArgs(ServiceArgs):
    tts: TTSConfig


class ASRArgs(ServiceArgs):
    asr: ASRConfig


class EmotionArgs(ServiceArgs):
    emotion: EmotionConfig


class SpeakerArgs(ServiceArgs):
    speaker: SpeakerCheck


class MOSArgs(ServiceArgs):
    mos: MOSCheck


def weights_identity(settings: dict[str, Any]) -> dict[str, Any]:
    """The backend's settings with each model path replaced by its weights' fingerprint."""
    identity = {k: v for k, v in settings.items() if k not in SPEED_ONLY}
    for name in MODEL_FIELDS:
        value = identity.get(name)
        if value == "embedded" and settings.get("backend") == "faster-whisper":
            identity[name] = {"embedded_asr_sha256": WHISPER_SHA256}
        elif value == "embedded":
            pass  # weights inside a package: its version is in the report's `library`
        elif isinstance(value, str):
            identity[name] = model_identity(value)
    return identity


class BatchStats:
    """What a replica did: model loads, batches, items, and batches that mixed several callers."""

    def __init__(self) -> None:
        self.loads = 0
        self.batches = 0
        self.items = 0
        self.shared_batches = 0
        self.sizes: Counter[int] = Counter()
        self._lock = threading.Lock()

    def record(self, callers: list[str]) -> None:
        with self._lock:
            self.batches += 1
            self.items += len(callers)
            self.sizes[len(callers)] += 1
            self.shared_batches += len(set(callers)) > 1

    def report(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "loads": self.loads,
            "batches": self.batches,
            "items": self.items,
            "shared_batches": self.shared_batches,
            "batch_sizes": {str(k): v for k, v in sorted(self.sizes.items())},
        }


def loaded(args: ServiceArgs, batched) -> BatchStats:
    """A replica whose model just loaded: its batching set from the args, its stats counting one load."""
    batched.set_max_batch_size(args.max_batch_size)
    batched.set_batch_wait_timeout_s(args.batch_wait_timeout_s)
    stats = BatchStats()
    stats.loads += 1
    return stats


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:500]


def infrastructure_answer(exc: Exception) -> JSONResponse:
    """A fault of the service (out of memory, a missing CUDA library): 500, so no item is judged on it."""
    return JSONResponse({"error": error_text(exc)}, status_code=500)


async def run_batch(handler, stats: BatchStats, calls: list[tuple[Any, str]]):
    """`handler` over the (work, caller) calls' work on a worker thread (the replica keeps answering
    /info); an item exception that is an infrastructure fault raises for the whole batch."""
    stats.record([caller for _, caller in calls])
    return await asyncio.to_thread(handler, [work for work, _ in calls])


tts_api = FastAPI()
asr_api = FastAPI()
emotion_api = FastAPI()
speaker_api = FastAPI()
mos_api = FastAPI()


@serve.deployment
@serve.ingress(tts_api)
class TTSService:
    def __init__(self, args: dict[str, Any]):
        from empathy_data.backends import registry as backends

        self.args = TTSArgs.model_validate(args)
        self.config = SynthesizeConfig(tts=self.args.tts)
        self.backend = backends.tts_backend(self.config)
        self.stats = loaded(self.args, self.render)

    @tts_api.get("/info")
    def info(self) -> dict[str, Any]:
        settings = self.args.tts.model_dump(mode="json", exclude={"neutral_reference"})
        identity = {
            "service": "tts",
            "backend": self.backend.identity.get("backend"),  # the rows' provenance names the model, not "service"
            "model": self.backend.identity,
            "settings": weights_identity(settings),
            "library": library_versions(*libraries_of("tts", self.args.tts)),
            "sample_rate": self.backend.sample_rate,
        }
        batching = self.args.model_dump(exclude={"tts"})
        return {"identity": identity, "batching": batching, "replica": self.stats.report()}

    @tts_api.post("/v1/tts")
    async def tts(self, request: Request):
        body = await request.json()
        try:
            requests = [tts_request_from_json(r) for r in body["requests"]]
        except (KeyError, TypeError, ValueError) as exc:
            return JSONResponse({"error": f"malformed request: {error_text(exc)}"}, status_code=422)
        try:
            rendered = await self.render((requests, request.headers.get(CALLER_HEADER, "")))
        except Exception as exc:  # the batch's fault, not this request's
            return infrastructure_answer(exc)
        items = [
            {"audio": encode_audio(a)} if not isinstance(a, Exception) else {"error": error_text(a)} for a in rendered
        ]
        return {"items": items}

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.02)
    async def render(self, calls: list[tuple[list, str]]) -> list[list]:
        def handler(dialogues: list[list]) -> list[list]:
            return [self.backend.synthesize(requests) for requests in dialogues]

        return await run_batch(handler, self.stats, calls)


@serve.deployment
@serve.ingress(asr_api)
class ASRService:
    def __init__(self, args: dict[str, Any]):
        from empathy_data.backends import registry as backends

        self.args = ASRArgs.model_validate(args)
        self.backend = backends.asr_backend(FilterConfig(asr=self.args.asr))
        self.stats = loaded(self.args, self.transcribe)

    @asr_api.get("/info")
    def info(self) -> dict[str, Any]:
        identity = {
            "service": "asr",
            "backend": self.backend.identity.get("backend"),
            "model": self.backend.identity,
            "settings": weights_identity(self.args.asr.model_dump(mode="json")),
            "library": library_versions(*libraries_of("asr", self.args.asr)),
        }
        batching = self.args.model_dump(exclude={"asr"})
        return {"identity": identity, "batching": batching, "replica": self.stats.report()}

    @asr_api.get("/v1/models")
    def models(self) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": "default", "object": "model", "owned_by": "empathy-data"}]}

    @asr_api.post("/v1/audio/transcriptions")
    async def transcriptions(self, request: Request):
        form = await request.form()
        upload, language = form.get("file"), form.get("language")
        if upload is None or isinstance(upload, str) or not language:
            return JSONResponse({"error": "needs a `file` upload and a `language`"}, status_code=400)
        try:
            audio, rate = read_wav(await upload.read())
        except Exception as exc:
            return JSONResponse({"error": f"undecodable audio: {error_text(exc)}"}, status_code=400)
        if rate != ASR_RATE:
            return JSONResponse({"error": f"audio at {rate} Hz: send {ASR_RATE} Hz"}, status_code=400)
        try:
            text = await self.transcribe(((audio, str(language)), request.headers.get(CALLER_HEADER, "")))
        except Exception as exc:
            return infrastructure_answer(exc)
        if isinstance(text, Exception):
            return JSONResponse({"error": error_text(text)}, status_code=422)
        return {"text": text}

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.02)
    async def transcribe(self, clips: list[tuple]) -> list:
        def handler(work: list[tuple]) -> list:  # an infrastructure fault raises from transcribe itself
            return self.backend.transcribe([a for a, _ in work], [lang for _, lang in work])

        return await run_batch(handler, self.stats, clips)


@serve.deployment
@serve.ingress(emotion_api)
class EmotionService:
    def __init__(self, args: dict[str, Any]):
        from empathy_data.backends import registry as backends

        self.args = EmotionArgs.model_validate(args)
        self.check = backends.emotion_backend(FilterConfig(emotion=self.args.emotion))
        self.stats = loaded(self.args, self.judge)

    @emotion_api.get("/info")
    def info(self) -> dict[str, Any]:
        settings = self.args.emotion.model_dump(mode="json", exclude={"batch_size"})
        identity = {
            "service": "emotion",
            "backend": self.args.emotion.backend,
            "model": self.check.identity,
            "settings": weights_identity(settings),
            "library": library_versions(*libraries_of("emotion", self.args.emotion)),
        }
        batching = self.args.model_dump(exclude={"emotion"})
        return {"identity": identity, "batching": batching, "replica": self.stats.report()}

    @emotion_api.post("/v1/emotion")
    async def emotion(self, request: Request):
        try:
            item = emotion_item_from_json(await request.json())
        except (KeyError, TypeError, ValueError) as exc:
            return JSONResponse({"error": f"malformed request: {error_text(exc)}"}, status_code=422)
        try:
            result = await self.judge((item, request.headers.get(CALLER_HEADER, "")))
        except Exception as exc:
            return infrastructure_answer(exc)
        if isinstance(result, Exception):
            return JSONResponse({"error": error_text(result)}, status_code=422)
        return emotion_result_to_json(result)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.02)
    async def judge(self, calls: list[tuple]) -> list:
        return await run_batch(self.check.check_batch, self.stats, calls)


async def read_clip(request: Request) -> tuple:
    body = await request.json()
    return decode_audio(body["audio"]), int(body["sample_rate"])


async def answer_clip(service, request: Request, render) -> Any:
    """One clip through the replica's batched method; `render(result)` is the JSON of a result."""
    try:
        clip = await read_clip(request)
    except (KeyError, TypeError, ValueError) as exc:
        return JSONResponse({"error": f"malformed request: {error_text(exc)}"}, status_code=422)
    try:
        result = await service.judge((clip, request.headers.get(CALLER_HEADER, "")))
    except Exception as exc:
        return infrastructure_answer(exc)
    if isinstance(result, Exception):
        return JSONResponse({"error": error_text(result)}, status_code=422)
    return render(result)


def judge_info(service, kind: str, settings: dict[str, Any], libraries: tuple | list) -> dict[str, Any]:
    identity = {"service": kind, "backend": settings.get("backend"), "model": service.model.identity,
                "settings": weights_identity(settings), "library": library_versions(*libraries)}  # fmt: skip
    batching = service.args.model_dump(exclude={kind})
    return {"identity": identity, "batching": batching, "replica": service.stats.report()}


@serve.deployment
@serve.ingress(speaker_api)
class SpeakerService:
    def __init__(self, args: dict[str, Any]):
        from empathy_data.backends import registry as backends

        self.args = SpeakerArgs.model_validate(args)
        self.model = backends.speaker_encoder(self.args.speaker)
        self.stats = loaded(self.args, self.judge)

    @speaker_api.get("/info")
    def info(self) -> dict[str, Any]:
        # the similarity thresholds are the build's: only what decides the embeddings is the service's
        settings = self.args.speaker.model_dump(mode="json", include={"backend", "model"})
        return judge_info(self, "speaker", settings, libraries_of("speaker", self.args.speaker))

    @speaker_api.post("/v1/speaker/embed")
    async def embed(self, request: Request):
        return await answer_clip(self, request, lambda vector: {"embedding": encode_audio(vector)})

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.02)
    async def judge(self, calls: list[tuple]) -> list:
        return await run_batch(self.model.embed_batch, self.stats, calls)


@serve.deployment
@serve.ingress(mos_api)
class MOSService:
    def __init__(self, args: dict[str, Any]):
        from empathy_data.backends import registry as backends

        self.args = MOSArgs.model_validate(args)
        self.model = backends.mos_backend(self.args.mos)
        self.stats = loaded(self.args, self.judge)

    @mos_api.get("/info")
    def info(self) -> dict[str, Any]:
        settings = self.args.mos.model_dump(mode="json", include={"backend", "model", "personalized"})
        return judge_info(self, "mos", settings, ["speechmos", "onnxruntime"])

    @mos_api.post("/v1/mos")
    async def mos(self, request: Request):
        return await answer_clip(self, request, lambda r: {"ovrl": r.ovrl, "sig": r.sig, "bak": r.bak})

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.02)
    async def judge(self, calls: list[tuple]) -> list:
        return await run_batch(self.model.score_batch, self.stats, calls)


def _deployment(cls, args: ServiceArgs):
    actor = {"num_cpus": args.num_cpus, "num_gpus": args.num_gpus}
    return cls.options(
        num_replicas=args.num_replicas, max_ongoing_requests=args.max_ongoing_requests, ray_actor_options=actor
    )


def _builder(parse: type[ServiceArgs], service):
    """A Serve application builder: the config file's `args` validated, then one deployment bound to them."""

    def build(args: dict[str, Any]):
        parsed = parse.model_validate(args)
        return _deployment(service, parsed).bind(parsed.model_dump(mode="json"))

    return build


# Serve config files name these (`import_path: empathy_data.serving.apps:tts_app`).
tts_app = _builder(TTSArgs, TTSService)
asr_app = _builder(ASRArgs, ASRService)
emotion_app = _builder(EmotionArgs, EmotionService)
speaker_app = _builder(SpeakerArgs, SpeakerService)
mos_app = _builder(MOSArgs, MOSService)
