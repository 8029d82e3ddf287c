"""The build config: one YAML file, validated by pydantic before anything heavy starts."""

from __future__ import annotations

import difflib
import math
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from empathy_data.config.arcs import ARCS
from empathy_data.config.paths import (
    LocalPath,
    LocalPaths,
    ModelPath,
    OptionalLocalPath,
    path_kind,
    resolve_path,
    resolve_paths,
)
from empathy_data.core.cpus import thread_share, usable_cpus
from empathy_data.core.errors import ConfigError
from empathy_data.core.labels import AGE_GROUPS, EMOTIONS, GENDERS, LANGUAGES, RESPONSE_STYLES

Weights = dict[str, Annotated[float, Field(ge=0)]]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def with_default_backend(data: Any, defaults: dict[str, str]) -> Any:
    """A stage block without `backend:` means the embedded default backend."""
    if isinstance(data, dict):
        data = dict(data)
        for key, backend in defaults.items():
            if isinstance(data.get(key), dict) and "backend" not in data[key]:
                data[key] = {**data[key], "backend": backend}
    return data


def check_weights(weights: dict[Any, float], allowed: tuple[str, ...] | None, what: str) -> None:
    if not weights:
        raise ValueError(f"{what}: needs at least one entry")
    if allowed is not None:
        unknown = sorted(str(k) for k in weights if k not in allowed)
        if unknown:
            raise ValueError(f"{what}: unknown label(s) {unknown}; allowed: {list(allowed)}")
    total = sum(weights.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ValueError(f"{what}: weights sum to {total:g}, not 1")


Table = dict[str, Weights]  # a joint table: outer label -> inner label -> weight (all cells sum to 1)


def check_table(table: Table, outer: tuple[str, ...], inner: tuple[str, ...] | None, what: str) -> None:
    unknown = sorted(k for k in table if k not in outer)
    if unknown:
        raise ValueError(f"{what}: unknown label(s) {unknown}; allowed: {list(outer)}")
    cells = {f"{a}.{b}": w for a, row in table.items() for b, w in row.items()}
    check_weights(cells, None, what)
    if inner is not None:
        bad = sorted({b for row in table.values() for b in row if b not in inner})
        if bad:
            raise ValueError(f"{what}: unknown label(s) {bad}; allowed: {list(inner)}")


def check_arc(arc: str | Table, what: str) -> None:
    if isinstance(arc, str):
        if arc not in ARCS:
            raise ValueError(f"{what}: unknown arc {arc!r}; named arcs: {list(ARCS)} (or a transition matrix)")
        return
    for emotion, row in arc.items():
        if emotion not in EMOTIONS:
            raise ValueError(f"{what}: unknown emotion {emotion!r}")
        check_weights(row, EMOTIONS, f"{what}.{emotion}")


class LabelMix(Strict):
    """The label distributions a language may override (see Distributions)."""

    user_emotion: Weights | None = None
    gender: Weights | None = None
    age_group: Weights | None = None
    exchanges: dict[int, Annotated[float, Field(ge=0)]] | None = None
    scenarios: Weights | None = None
    response_style: dict[str, Weights] | None = None
    emotion_arc: str | Table | None = None
    gender_age: Table | None = None
    emotion_scenario: Table | None = None


class Distributions(Strict):
    """What the plan draws. Each dialogue-level label (language, first-exchange user emotion, gender, age
    group, exchanges, and each cell of a joint table) is allocated exactly: every prefix of the plan is
    within one dialogue of its share (see allocation.py)."""

    user_emotion: Weights = Field(default_factory=lambda: {e: 1 / len(EMOTIONS) for e in EMOTIONS})
    gender: Weights = Field(default_factory=lambda: {"female": 0.5, "male": 0.5})
    age_group: Weights = Field(
        default_factory=lambda: {
            "child": 0.1,
            "teen": 0.15,
            "young_adult": 0.3,
            "adult": 0.3,
            "elderly": 0.15,
        }
    )
    exchanges: dict[int, Annotated[float, Field(ge=0)]] = Field(default_factory=lambda: {2: 1.0})
    # None: uniform over the scenarios of each language that fit the dialogue's user emotion. Given, the
    # emotion and scenario are drawn jointly from the table that has both mixes as margins (refused when
    # no such table exists), so both hold within one dialogue of a language's dialogues.
    scenarios: Weights | None = None
    # Per user emotion, weights over reply styles; None: labels.DEFAULT_STYLE_BY_EMOTION.
    response_style: dict[str, Weights] | None = None
    # How the user's emotion moves across exchanges: a named arc (arcs.ARCS) or a transition matrix.
    emotion_arc: str | Table = "steady"
    # Joint tables, instead of the two marginals: gender -> age_group -> weight, emotion -> scenario -> weight.
    gender_age: Table | None = None
    emotion_scenario: Table | None = None
    # Per-language overrides of any of the above (e.g. zh: {gender: {female: 0.7, male: 0.3}}).
    per_language: dict[str, LabelMix] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _weights(self) -> Distributions:
        given = self.model_fields_set
        check_weights(self.user_emotion, EMOTIONS, "user_emotion")
        check_weights(self.gender, GENDERS, "gender")
        check_weights(self.age_group, AGE_GROUPS, "age_group")
        check_weights(self.exchanges, None, "exchanges")
        if any(n < 1 or n > 8 for n in self.exchanges):
            raise ValueError("exchanges: each count must be between 1 and 8")
        if self.scenarios is not None:
            check_weights(self.scenarios, None, "scenarios")
        if self.response_style is not None:
            for emotion, styles in self.response_style.items():
                if emotion not in EMOTIONS:
                    raise ValueError(f"response_style: unknown emotion {emotion!r}")
                check_weights(styles, RESPONSE_STYLES, f"response_style.{emotion}")
        check_arc(self.emotion_arc, "emotion_arc")
        if self.gender_age is not None:
            check_table(self.gender_age, GENDERS, AGE_GROUPS, "gender_age")
            both = sorted({"gender", "age_group"} & given)
            if both:
                raise ValueError(f"gender_age: give the joint table or {' and '.join(both)}, not both")
        if self.emotion_scenario is not None:
            check_table(self.emotion_scenario, EMOTIONS, None, "emotion_scenario")
            both = sorted({"user_emotion", "scenarios"} & given)
            if both:
                raise ValueError(f"emotion_scenario: give the joint table or {' and '.join(both)}, not both")
        for language in self.per_language:
            if language not in LANGUAGES:
                raise ValueError(f"per_language: unknown language {language!r}; allowed: {list(LANGUAGES)}")
            self.for_language(language)
        return self

    def for_language(self, language: str) -> Distributions:
        """These distributions with the language's overrides applied (validated like the top level)."""
        overrides = self.per_language.get(language)
        if overrides is None:
            return self
        base = self.model_dump(exclude={"per_language"}, exclude_unset=True)
        for name in overrides.model_fields_set:
            base[name] = getattr(overrides, name)
            # an override of a marginal replaces the joint table that holds it, and the other way round
            for joint, parts in (("gender_age", ("gender", "age_group")), ("emotion_scenario", ("user_emotion", "scenarios"))):  # noqa: E501
                if name == joint:
                    for part in parts:
                        base.pop(part, None)
                elif name in parts:
                    base.pop(joint, None)
        try:
            return Distributions.model_validate(base)
        except ValidationError as exc:
            message = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise ValueError(f"per_language.{language}: {message}") from None

    def overridden(self, language: str, *names: str) -> bool:
        overrides = self.per_language.get(language)
        return overrides is not None and bool(set(names) & overrides.model_fields_set)


class EmbeddedServer(Strict):
    # The embedded writer: Qwen2.5-Coder 0.5B (ships with the package) or 1.5B (`[writer-1-5b]` extra, 1.1 GB;
    # ~2.5x the CPU per token, coherent where the 0.5B breaks speaker order: docs/backends.md).
    model: Literal["qwen2.5-0.5b", "qwen2.5-1.5b"] = "qwen2.5-0.5b"
    # None: the build's thread share (runner.cpus divided among the tasks that run at once).
    n_threads: int | None = Field(default=None, ge=1)
    n_ctx: int = Field(default=4096, ge=512)
    startup_timeout_s: float = Field(default=120, gt=0)


class ValidationRules(Strict):
    min_words: int = Field(default=2, ge=1)
    # A spoken turn is one or two sentences; 45 words (90 Chinese characters) is ~15-30 s of speech,
    # and a longer one would be rejected by the filter's max_duration_s after paying for its audio.
    max_words: int = Field(default=45, ge=1)
    max_reasoning_words: int = Field(default=90, ge=1)
    min_reasoning_words: int = Field(default=5, ge=1)


JUDGE_CRITERIA = ("emotion", "style", "topic", "reasoning", "naturalness")


class ScriptJudge(Strict):
    """An LLM scores each script that passed validation against its spec, before any audio is made;
    a script below a threshold is written again like any rejected one (docs/backends.md, "Judges")."""

    enabled: bool = True
    # None: the script stage's own server and model (the embedded one by default). Otherwise any
    # OpenAI-compatible server (script backend openai only; with vLLM the judge shares the engine).
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int = Field(default=200, ge=32)
    # 1..5 per criterion; a script passes when every listed criterion reaches its minimum. Unset: 2 on every
    # criterion.
    min_scores: dict[str, Annotated[int, Field(ge=1, le=5)]] | None = None
    # scores: the judge scores the script against its plan, 1-5 per criterion (min_scores gates). labels: it
    # reads the conversation without the plan and picks, per exchange, how the person sounds (from the emotion
    # list) and the reply's style (from the style list); a pick named in `match` that differs from the plan
    # rejects the script, compared in code (docs/backends.md, "Judges"). auto: the mode whose verdicts agree
    # better with the hand-labelled cases (below); scores when the judge is not measured.
    mode: Literal["auto", "scores", "labels"] = "auto"
    # Unset: emotion and style.
    match: tuple[Literal["emotion", "style"], ...] | None = None
    # Measured before it gates (runtime/judge_calibration.py): the build runs the judge over the labelled cases
    # (prompts/judge_cases.yaml, the build's languages), once per judge identity, and the judge gates only when
    # its verdicts agree with the labels on at least this share of them; below, it records its verdicts and
    # rejects nothing (the embedded 0.5B and 1.5B models: 7-8 of 16). null: not measured, gates as set.
    min_agreement: float | None = Field(default=0.75, ge=0, le=1)

    @property
    def calibrated(self) -> bool:
        return self.enabled and self.min_agreement is not None

    def modes(self) -> tuple[str, ...]:
        """The modes the build may run in: both for auto when the judge is measured (the better one runs), the
        one set otherwise (auto unmeasured: scores)."""
        if self.mode == "auto":
            return ("scores", "labels") if self.calibrated else ("scores",)
        return (self.mode,)

    def label_gate(self) -> tuple[str, ...]:
        return self.match if self.match is not None else ("emotion", "style")

    @field_validator("min_scores")
    @classmethod
    def _criteria(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        unknown = sorted(set(value or {}) - set(JUDGE_CRITERIA))
        if unknown:
            raise ValueError(f"unknown criterion {unknown[0]!r} (known: {', '.join(JUDGE_CRITERIA)})")
        return value

    @model_validator(mode="after")
    def _server_settings_need_a_server(self) -> ScriptJudge:
        if self.base_url is None and (self.model or self.api_key_env):
            raise ValueError("model and api_key_env name the judge's own server: set base_url too")
        return self

    def thresholds(self) -> dict[str, int]:
        return self.min_scores if self.min_scores is not None else dict.fromkeys(JUDGE_CRITERIA, 2)


# Each embedded model's minimum similarity per language, measured on the hand-labelled cases
# (benchmarks/topic_thresholds.py, docs/backends.md): all-MiniLM-L6-v2 is English-only (no zh minimum: a
# drifted Mandarin dialogue scored above the good ones); multilingual-e5's similarities sit in a narrow
# band, so its minimums are high.
TOPIC_MINIMUMS = {"embedded": {"en": 0.15}, "embedded-multilingual": {"en": 0.80, "zh": 0.87}}


class TopicCheck(Strict):
    """Scenario-dialogue similarity of sentence embeddings (`embedded`: all-MiniLM-L6-v2, English;
    `embedded-multilingual`: multilingual-e5-small, English and Mandarin; both shipped in PyPI packages;
    or a sentence-transformers model directory); below the language's minimum is topic drift."""

    enabled: bool = True
    model: ModelPath = "embedded"
    device: str = "cpu"
    batch_size: int = Field(default=32, ge=1)
    # Unset: the model's measured minimums (TOPIC_MINIMUMS; a model directory gets the `embedded` ones).
    min_similarity: dict[str, Annotated[float, Field(ge=-1, le=1)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _model_minimums(self) -> TopicCheck:
        if "min_similarity" not in self.model_fields_set:
            minimums = TOPIC_MINIMUMS.get(str(self.model), TOPIC_MINIMUMS["embedded"])
            object.__setattr__(self, "min_similarity", dict(minimums))
        return self

    def minimum(self, language: str) -> float | None:
        return self.min_similarity.get(language)


# "dialogue": one request writes every exchange. "exchange": one request per exchange, shown the
# exchange before it; a failed exchange is retried alone. Small models need it: asked for two
# exchanges at once, the embedded 0.5B model often writes the second as a copy of the first.
# "auto": by dialogue below `exchange_mode_from` exchanges, by exchange from there on (long dialogues
# written in one request repeat themselves and cost a whole dialogue per rejected exchange).
WriteBy = Literal["dialogue", "exchange", "auto"]


class ScriptWriting(Strict):
    """What both script backends share: sampling, the reply's token budget, attempts, checks and judges."""

    temperature: float = Field(default=0.8, ge=0, le=2)
    top_p: float = Field(default=0.95, gt=0, le=1)
    # OpenAI semantics: positive values discourage tokens already in the reply (small models
    # otherwise tend to write the second exchange as a copy of the first).
    frequency_penalty: float = Field(default=0.0, ge=-2, le=2)
    presence_penalty: float = Field(default=0.0, ge=-2, le=2)
    # The reply's token budget: max_tokens for a one-exchange reply, plus max_tokens_per_exchange for each
    # further exchange the request asks for (a six-exchange dialogue needs far more than one).
    max_tokens: int = Field(default=700, ge=16)
    max_tokens_per_exchange: int = Field(default=300, ge=0)
    max_attempts: int = Field(default=3, ge=1)
    validation: ValidationRules = ValidationRules()
    judge: ScriptJudge = ScriptJudge()
    topic: TopicCheck = TopicCheck()
    write_by: WriteBy = "auto"
    exchange_mode_from: int = Field(default=3, ge=1)
    # A dialogue written by exchange whose exchange k+1 fails every attempt in the last round keeps its
    # first k exchanges as rows (the rest are counted rejected, with the reasons); false: it is rejected whole.
    keep_stalled_exchanges: bool = True


class OpenAIScript(ScriptWriting):
    """Any OpenAI-compatible chat server. base_url None starts the embedded llama.cpp server."""

    backend: Literal["openai"] = "openai"
    base_url: str | None = None
    model: str = "embedded"
    api_key_env: str | None = None
    # How the server takes a JSON schema: OpenAI/vLLM `json_schema`, or llama.cpp's `json_object` + schema.
    structured_output: Literal["json_schema", "json_object_schema"] | None = None
    max_in_flight: int = Field(default=2, ge=1)
    request_retries: int = Field(default=4, ge=0)
    timeout_s: float = Field(default=180, gt=0)
    embedded: EmbeddedServer = EmbeddedServer()
    # Start each prompt with a line unique to the request, so a server's prefix-cache reuse (llama.cpp)
    # is the same whatever ran before: replays give the same text. Unset: on for a server at base_url,
    # off for the embedded one, which reuses only whole prompt blocks (llama_serve.reuse_whole_blocks):
    # the tag would keep its prompts from sharing their system prompt.
    request_tag: bool = False

    @model_validator(mode="before")
    @classmethod
    def _tag_requests_to_servers(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("request_tag") is None:
            data = {**data, "request_tag": data.get("base_url") is not None}
        return data

    def schema_form(self) -> str:
        if self.structured_output:
            return self.structured_output
        return "json_object_schema" if self.base_url is None else "json_schema"


class VLLMScript(ScriptWriting):
    """vLLM's in-process offline engine: batched chat with JSON-schema structured outputs (GPU)."""

    backend: Literal["vllm"] = "vllm"
    model: ModelPath  # local directory or hub id
    tensor_parallel_size: int = Field(default=1, ge=1)
    gpu_memory_utilization: float = Field(default=0.85, gt=0, le=1)
    max_model_len: int | None = Field(default=None, ge=256)
    dtype: str = "auto"
    max_in_flight: int = Field(default=256, ge=1)  # requests handed to the engine at once
    request_tag: bool = False


ScriptConfig = Annotated[OpenAIScript | VLLMScript, Field(discriminator="backend")]


class EspeakSynth(Strict):
    backend: Literal["espeak"] = "espeak"
    # Also render each user turn in the voice's neutral prosody, for the prosody emotion check.
    neutral_reference: bool = True


class KokoroSynth(Strict):
    """Kokoro-82M (int8 ONNX, in PyPI parts; extra `[kokoro]`): English and Mandarin, each speaker a blend
    of its five voice packs (speaker pool `voice.blend`, e.g. the built-in `kokoro` pool). It takes no
    emotion: the planned emotion moves its speed and loudness, as espeak's parameters move espeak's."""

    backend: Literal["kokoro"] = "kokoro"
    neutral_reference: bool = True
    # onnxruntime's threads; None: the build's thread share, as filter.asr.cpu_threads.
    threads: int | None = Field(default=None, ge=1)


class CosyVoice2Synth(Strict):
    """CosyVoice2 instruct mode: an emotion instruction plus zero-shot voice from the speaker's clip."""

    backend: Literal["cosyvoice2"] = "cosyvoice2"
    model_dir: LocalPath  # local model directory (a missing one would trigger a hub download: refused)
    repo_dir: OptionalLocalPath = None  # a CosyVoice checkout to import from, if it is not installed
    fp16: bool = False
    speed: float = Field(default=1.0, gt=0.25, le=4)
    neutral_reference: bool = False
    # CosyVoice2's accelerated paths (its constructor's flags): TorchScript text encoder, TensorRT flow
    # decoder, vLLM for the speech-token LM. They change numerics, so they are in the stage key when on.
    load_jit: bool = False
    load_trt: bool = False
    load_vllm: bool = False


class XTTSSynth(Strict):
    """Coqui XTTS-v2 voice cloning from the reference clip whose emotion matches the target."""

    backend: Literal["xtts"] = "xtts"
    model_dir: LocalPath
    device: Literal["cpu", "cuda"] = "cuda"
    neutral_reference: bool = False
    # XTTS-v2 weights are under the Coqui Public Model License: the user accepts it, never this tool.
    accept_license: bool = False


class ServiceEndpoint(Strict):
    """A model service in its own environment (serving/, services/README.md). Its URL, timeouts and
    concurrency change speed only: the stage key takes the service's own report (`GET /info`)."""

    url: str
    timeout_s: float = Field(default=300, gt=0)
    request_retries: int = Field(default=3, ge=0)
    # Requests one chunk task keeps in flight: the service batches them with other chunks' requests.
    max_in_flight: int = Field(default=16, ge=1)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"url: {value!r} is not an http(s) URL")
        return value.rstrip("/")


class ServiceSynth(ServiceEndpoint):
    """Any TTS the service hosts (`empathy_data.serving.apps:tts_app`): espeak, CosyVoice2, XTTS-v2."""

    backend: Literal["service"] = "service"
    neutral_reference: bool = False


class TritonSynth(ServiceEndpoint):
    """CosyVoice2/3 on its own Triton Inference Server runtime (TensorRT-LLM; upstream
    runtime/triton_trtllm), over Triton's HTTP/REST protocol. That runtime clones the reference clip's
    voice and has no instruction input: the emotion is the clip's, so give speakers a clip per emotion."""

    backend: Literal["triton"] = "triton"
    model: str = "cosyvoice2"  # the Triton model name: cosyvoice2 or cosyvoice3
    sample_rate: int = Field(default=24000, ge=8000, le=48000)  # the model's output rate (CosyVoice2/3: 24 kHz)
    reference_sample_rate: int = Field(default=16000, ge=8000, le=48000)  # what its reference_wav input expects
    # Zero-pad reference clips to a multiple of this many seconds (reference_wav_len keeps the true length):
    # Triton's dynamic batcher batches only inputs of equal shape. 0: no padding.
    reference_pad_s: float = Field(default=10.0, ge=0)
    neutral_reference: bool = False


TTSConfig = Annotated[
    EspeakSynth | KokoroSynth | CosyVoice2Synth | XTTSSynth | ServiceSynth | TritonSynth,
    Field(discriminator="backend"),
]


class SynthesizeConfig(Strict):
    sample_rate: int = Field(default=16000, ge=8000, le=48000)
    target_dbfs: float = Field(default=-20.0, le=0)
    trim_db: float = Field(default=40.0, gt=0)
    tts: TTSConfig = EspeakSynth()

    @model_validator(mode="before")
    @classmethod
    def _default_backend(cls, data: Any) -> Any:
        return with_default_backend(data, {"tts": "espeak"})


class FasterWhisperASR(Strict):
    backend: Literal["faster-whisper"] = "faster-whisper"
    # "embedded" = Whisper base shipped in PyPI parts; else a CTranslate2 model dir or size name.
    model: ModelPath = "embedded"
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compute_type: str = "int8"
    beam_size: int = Field(default=1, ge=1)
    # None: the build's thread share (runner.cpus divided among the tasks that run at once), or every
    # core of a model service's machine; 0: CTranslate2's own default.
    cpu_threads: int | None = Field(default=None, ge=0)
    # Utterances (up to 30 s each) encoded and decoded together; 1: one at a time through transcribe().
    batch_size: int = Field(default=1, ge=1)


class TransformersASR(Strict):
    """Any transformers `automatic-speech-recognition` checkpoint (local dir or hub id)."""

    backend: Literal["transformers"] = "transformers"
    model: ModelPath
    device: str = "cpu"  # "cpu", "cuda", "cuda:1"
    batch_size: int = Field(default=8, ge=1)


class ServiceASR(ServiceEndpoint):
    """An OpenAI-compatible transcription server (`POST {url}/v1/audio/transcriptions`): this package's
    ASR service (`empathy_data.serving.apps:asr_app`) or `vllm serve` with a Whisper model. Its identity
    is the server's `GET {url}/info` report, or `/v1/models` and `/version` for vLLM."""

    backend: Literal["service"] = "service"
    model: str = "default"  # the served model's name, as the server lists it


ASRConfig = Annotated[FasterWhisperASR | TransformersASR | ServiceASR, Field(discriminator="backend")]


class EmotionGate(Strict):
    """Calibrated gating (stages/filter/calibration.py): before it gates, the check is measured on probe
    clips the build's own TTS renders; it gates only the emotions whose recall and precision there reach
    these floors, and is recorded (not gated) for the others. Both floors null: every emotion is gated
    and nothing is measured."""

    min_recall: float | None = Field(default=0.75, ge=0, le=1)
    min_precision: float | None = Field(default=0.5, ge=0, le=1)
    calibration_sentences: int = Field(default=2, ge=1, le=4)  # probe sentences per voice and emotion
    calibration_voices: int = Field(default=2, ge=1)  # per language, alternating female and male

    @property
    def calibrated(self) -> bool:
        return self.min_recall is not None or self.min_precision is not None

    def gate_settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in EmotionGate.model_fields}


class ProsodyEmotion(EmotionGate):
    backend: Literal["prosody"] = "prosody"
    # Minimum arousal shift (log-scale composite) that counts as "raised" or "lowered".
    min_shift: float = Field(default=0.04, ge=0)


class ClassifierEmotion(EmotionGate):
    """A speech emotion classifier; `label_map` maps its labels to ours (unmapped labels are ignored)."""

    backend: Literal["transformers", "emotion2vec"]
    model: ModelPath  # local directory or hub id
    device: str = "cpu"
    hub: Literal["ms", "hf"] = "hf"  # emotion2vec only: which hub an id (not a directory) refers to
    label_map: dict[str, str] | None = None
    # Pass when the target emotion is the top prediction or gets at least this probability.
    min_prob: float = Field(default=0.5, ge=0, le=1)
    batch_size: int = Field(default=1, ge=1)  # clips per model call

    @field_validator("label_map")
    @classmethod
    def _label_map(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value:
            unknown = sorted({v for v in value.values() if v not in EMOTIONS})
            if unknown:
                raise ValueError(f"label_map: unknown emotion(s) {unknown}; allowed: {list(EMOTIONS)}")
        return value


class ServiceEmotion(ServiceEndpoint, EmotionGate):
    """Any emotion check the service hosts (`empathy_data.serving.apps:emotion_app`): emotion2vec, a
    transformers classifier, or the prosody check; its thresholds are the service's settings."""

    backend: Literal["service"] = "service"


EmotionConfig = Annotated[ProsodyEmotion | ClassifierEmotion | ServiceEmotion, Field(discriminator="backend")]


class LanguageThresholds(Strict):
    """Error-rate limits for one language; an unset field keeps the build-wide value."""

    max_wer: float | None = Field(default=None, ge=0)
    max_cer: float | None = Field(default=None, ge=0)


class Thresholds(Strict):
    max_wer: float = Field(default=0.25, ge=0)
    max_cer: float = Field(default=0.25, ge=0)
    min_duration_s: float = Field(default=0.5, ge=0)
    max_duration_s: float = Field(default=30.0, gt=0)
    max_silence_ratio: float = Field(default=0.6, ge=0, le=1)
    check_emotion: bool = True
    # The ASR judge's own error floor differs by language (Whisper base on Mandarin is far weaker than
    # on English), so a limit calibrated for one language can reject good audio in another.
    per_language: dict[str, LanguageThresholds] = {}

    @field_validator("per_language")
    @classmethod
    def _known_languages(cls, value: dict[str, LanguageThresholds]) -> dict[str, LanguageThresholds]:
        unknown = sorted(set(value) - set(LANGUAGES))
        if unknown:
            raise ValueError(f"unknown language {unknown[0]!r} (known: {', '.join(LANGUAGES)})")
        return value

    def for_language(self, language: str) -> Thresholds:
        override = self.per_language.get(language)
        if override is None:
            return self
        return self.model_copy(update=override.model_dump(exclude_none=True))


class SpeakerCheck(Strict):
    """Speaker embeddings per turn (Resemblyzer's encoder, shipped in its PyPI package, by default; or a
    WavLM/UniSpeech-SAT x-vector model directory): one role's voice stays the same across a dialogue,
    user and assistant sound apart, and a cloned turn sounds like its reference clip."""

    enabled: bool = True
    backend: Literal["resemblyzer", "xvector"] = "resemblyzer"
    model: OptionalLocalPath = None  # xvector: a local model directory
    device: str = "cpu"
    batch_size: int = Field(default=64, ge=1)
    # Measured on the built-in espeak voices (docs/backends.md, "Judges"): one voice across emotions stays >= 0.70
    # in 99.9% of turns; a swap to another voice scores below it 20% (same gender) to 70% (other gender).
    min_consistency: float = Field(default=0.70, ge=-1, le=1)
    max_user_assistant_similarity: float | None = Field(default=0.95, ge=-1, le=1)
    min_reference_similarity: float | None = Field(default=0.75, ge=-1, le=1)
    # The encoder at a model service (`empathy_data.serving.apps:speaker_app`) instead of in this process;
    # backend, model, device and batch_size are then the service's own settings.
    service: ServiceEndpoint | None = None

    @model_validator(mode="after")
    def _model_for_xvector(self) -> SpeakerCheck:
        if self.backend == "xvector" and not self.model:
            raise ValueError("backend xvector needs `model`: a local WavLM/UniSpeech-SAT x-vector directory")
        return self


class MOSCheck(Strict):
    """DNSMOS P.835 (`sig_bak_ovr.onnx`): "embedded" is the copy inside the `speechmos` PyPI package, or give
    a local file or directory. Off by default: on 2 CPU cores it costs ~0.5 s per 9 s window, and a short
    clip is repeated up to one window plus eight more (docs/backends.md, "Judges")."""

    backend: Literal["dnsmos"] = "dnsmos"
    model: ModelPath = "embedded"
    device: str = "cpu"
    # DNSMOS at a model service (`empathy_data.serving.apps:mos_app`); model, device, personalized and
    # batch_size are then the service's own settings.
    service: ServiceEndpoint | None = None
    personalized: bool = False
    batch_size: int = Field(default=1, ge=1)
    # onnxruntime's threads; None: the build's thread share, as filter.asr.cpu_threads.
    threads: int | None = Field(default=None, ge=1)
    min_mos: float | None = Field(default=3.0, ge=1, le=5)  # overall (OVRL); null records the score only

class FilterConfig(Strict):
    asr: ASRConfig = FasterWhisperASR()
    emotion: EmotionConfig = ProsodyEmotion()
    speaker: SpeakerCheck = SpeakerCheck()
    mos: MOSCheck | None = None
    thresholds: Thresholds = Thresholds()

    @model_validator(mode="before")
    @classmethod
    def _default_backend(cls, data: Any) -> Any:
        return with_default_backend(data, {"asr": "faster-whisper", "emotion": "prosody"})


class ExportConfig(Strict):
    splits: Weights = Field(default_factory=lambda: {"train": 0.9, "validation": 0.05, "test": 0.05})
    # At most this many rows in a Parquet shard. Export writes each chunk's rows on its own worker, so a
    # shard never spans two chunks: a chunk of fewer accepted rows makes one smaller shard per split.
    rows_per_shard: int = Field(default=1000, ge=1)
    rejects_audio: bool = False
    # "speaker": splits are assigned by user speaker, so no voice a model is tested on was heard in
    # training; "dialogue": by dialogue (finer ratios on small corpora, but voices leak across splits).
    split_by: Literal["speaker", "dialogue"] = "speaker"
    # An exchange whose history holds an exchange the filter turned down: "reject" sends it to rejects/
    # (reason `history: ...`), "keep" exports it; either way its row says history_clean.
    unclean_history: Literal["reject", "keep"] = "reject"
    # Scripts whose estimated word-trigram Jaccard similarity (MinHash) to an earlier accepted script reaches
    # this are rejected as `near_duplicate` (the first one kept); null turns the check off.
    near_duplicate_threshold: float | None = Field(default=0.8, gt=0, le=1)
    # Scripts whose sentence-embedding cosine similarity (script.topic's model) to an earlier kept script
    # reaches this are rejected as `semantic_duplicate`: paraphrases MinHash cannot see. null: off. Needs the
    # embeddings the script stage keeps while script.topic is enabled (set no min_similarity to keep only those).
    semantic_duplicate_threshold: float | None = Field(default=0.97, gt=0, le=1)
    # Write OUT/report/index.html at the end of a build (`empathy-data report OUT` writes it any time).
    report: bool = True

    @field_validator("splits")
    @classmethod
    def _splits(cls, value: dict[str, float]) -> dict[str, float]:
        check_weights(value, None, "splits")
        for name in value:
            if not name.replace("_", "").isalnum():
                raise ValueError(f"splits: {name!r} is not a valid split name")
        return value


class RegenerateConfig(Strict):
    """Write again the dialogues the filter (or script validation) rejected, each time from new seeds.

    Round r re-runs script -> synthesize -> filter for the dialogues whose best version so far has a
    rejected exchange; each dialogue keeps its best version (most accepted exchanges, earliest round on
    a tie) and the versions it replaced go to rejects/ with verdict `replaced`. Dialogues that failed
    (an error, not a rejection) are not regenerated.
    """

    rounds: int = Field(default=0, ge=0, le=20)


class RebalanceConfig(Strict):
    """Top-up: after filtering, plan extra dialogues (indices from num_dialogues on) into the labels that
    lost most to the filter, until every dialogue-level label of the accepted corpus is within
    `tolerance` of its target share, or `max_extra` x num_dialogues extra dialogues are spent. Each pass
    plans what the shares still lack as if every extra were accepted, then builds them; the next pass
    sees what the filter kept of them."""

    tolerance: float = Field(default=0.02, gt=0, lt=1)
    max_extra: float = Field(default=0.3, gt=0, le=5)
    passes: int = Field(default=2, ge=1, le=10)

    def budget(self, num_dialogues: int) -> int:
        return int(self.max_extra * num_dialogues)


class RunnerConfig(Strict):
    kind: Literal["thread", "ray", "dask"] = "thread"
    # Tasks that run at once (threads here; Ray and Dask size their own workers).
    max_workers: int = Field(default=1, ge=1)
    address: str | None = None
    # Chunks whose tasks are submitted at once; None: twice max_workers. After a chunk fails, no new one starts.
    max_chunks_in_flight: int | None = Field(default=None, ge=1)
    # CPU cores the build's models may use on a machine; None: the cores this process may run on. Each
    # model left without its own thread count (script.embedded.n_threads, filter.asr.cpu_threads,
    # filter.mos.threads) gets these cores divided by max_workers, so the models that compute at once
    # never ask for more threads than there are cores. On a Ray or Dask cluster, set it to a worker's cores.
    cpus: int | None = Field(default=None, ge=1)

    @property
    def chunks_in_flight(self) -> int:
        return self.max_chunks_in_flight or 2 * self.max_workers

    @property
    def threads_per_task(self) -> int:
        return thread_share(self.cpus or usable_cpus(), self.max_workers)


class StageResources(Strict):
    """Where and how many of one stage's chunk tasks run. `gpus` is what each task asks of the cluster
    (Ray `num_gpus`, Dask worker resource `GPU`): 1 gives a TTS model a GPU to itself, 0.5 lets two
    judges share one. `max_concurrent` caps the stage's tasks running at once on any runner."""

    gpus: float = Field(default=0.0, ge=0)
    max_concurrent: int | None = Field(default=None, ge=1)


class Resources(Strict):
    script: StageResources = StageResources()
    synthesize: StageResources = StageResources()
    filter: StageResources = StageResources()


class StorageConfig(Strict):
    """For an `output` URL (s3://, gs://, ...): fsspec's options for that filesystem (endpoint, profile;
    leave secrets to the environment), and the local directory where each process keeps what it
    writes bit by bit before the store gets it (default: ~/.cache/empathy-data/<hash of the URL>)."""

    options: dict[str, Any] = Field(default_factory=dict)
    scratch_dir: OptionalLocalPath = None


class IngestConfig(Strict):
    """Real recorded user queries mixed into the plan (an `empathy-data ingest` directory)."""

    # One ingested directory, or a list of them (each corpus keeps its own name, source and licence).
    path: LocalPaths
    # Share of planned dialogues whose user turn is a real recording (EChat-200K mixes real queries into
    # synthetic ones). Each such dialogue has one exchange; its labels are the recording's.
    mix: float = Field(gt=0.0, le=1.0)

    @field_validator("path", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("path")
    @classmethod
    def _some(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("names no ingested directory")
        return value


class ContrastConfig(Strict):
    """Contrast groups (Sympatheia's neutral split, EchoMind): `size` one-exchange dialogues whose user says the
    same words, in `size` emotions (`by: emotion`), by `size` users of other genders and ages (`speaker`), or
    both; each member gets its own reply for how it sounds. Groups are consecutive plan indices inside a chunk."""

    by: Literal["emotion", "speaker", "both"] = "emotion"
    size: int = Field(default=3, ge=2, le=len(EMOTIONS))
    share: float = Field(default=1.0, gt=0.0, le=1.0)  # of the groups of `size` plan indices that are contrastive


class BuildConfig(Strict):
    name: str = "empathy-corpus"
    seed: int = 0
    num_dialogues: int = Field(default=8, ge=1)
    chunk_size: int = Field(default=64, ge=1)
    # A directory, or an fsspec URL (s3://bucket/corpus) whose filesystem package is installed.
    output: LocalPath = "out/corpus"
    storage: StorageConfig = StorageConfig()
    languages: Weights = Field(default_factory=lambda: {"en": 1.0})
    distributions: Distributions = Distributions()
    # "builtin" (the configured TTS's own pool: espeak's or kokoro's), "builtin:kokoro", or a path to a
    # speaker pool YAML (relative paths are relative to the config file).
    speaker_pool: LocalPath = "builtin"
    # None: the prompts shipped with the package; else a directory laid out like prompts/.
    prompts_dir: OptionalLocalPath = None
    script: ScriptConfig = OpenAIScript()
    synthesize: SynthesizeConfig = SynthesizeConfig()
    filter: FilterConfig = FilterConfig()
    export: ExportConfig = ExportConfig()
    regenerate: RegenerateConfig = RegenerateConfig()
    rebalance: RebalanceConfig | None = None
    ingest: IngestConfig | None = None
    contrast: ContrastConfig | None = None
    runner: RunnerConfig = RunnerConfig()
    resources: Resources = Resources()

    @model_validator(mode="before")
    @classmethod
    def _default_backend(cls, data: Any) -> Any:
        return with_default_backend(data, {"script": "openai"})

    @model_validator(mode="after")
    def _prosody_needs_reference(self) -> BuildConfig:
        f = self.filter
        if f.emotion.backend == "prosody" and f.thresholds.check_emotion and not self.synthesize.tts.neutral_reference:
            raise ValueError(
                "filter.emotion: the prosody check needs synthesize.tts.neutral_reference: true "
                "(or a classifier backend, or thresholds.check_emotion: false)"
            )
        return self

    @model_validator(mode="after")
    def _groups_inside_chunks(self) -> BuildConfig:
        if self.contrast is not None and self.chunk_size % self.contrast.size:
            raise ValueError(f"contrast.size {self.contrast.size} must divide chunk_size {self.chunk_size}: a group's "
                             "members are written together, in one chunk")  # fmt: skip
        return self

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: dict[str, float]) -> dict[str, float]:
        check_weights(value, LANGUAGES, "languages")
        return value

    @model_validator(mode="after")
    def _share_threads(self) -> BuildConfig:
        """Thread counts left unset become the runner's share, here, once: every task and the embedded
        server read the same numbers from the validated config."""
        share = self.runner.threads_per_task
        if isinstance(self.script, OpenAIScript) and self.script.embedded.n_threads is None:
            embedded = self.script.embedded.model_copy(update={"n_threads": share})
            object.__setattr__(self, "script", self.script.model_copy(update={"embedded": embedded}))
        if isinstance(self.synthesize.tts, KokoroSynth) and self.synthesize.tts.threads is None:
            tts = self.synthesize.tts.model_copy(update={"threads": share})
            object.__setattr__(self, "synthesize", self.synthesize.model_copy(update={"tts": tts}))
        filter_ = self.filter
        if isinstance(filter_.asr, FasterWhisperASR) and filter_.asr.cpu_threads is None:
            filter_ = filter_.model_copy(update={"asr": filter_.asr.model_copy(update={"cpu_threads": share})})
        if filter_.mos is not None and filter_.mos.threads is None:
            filter_ = filter_.model_copy(update={"mos": filter_.mos.model_copy(update={"threads": share})})
        object.__setattr__(self, "filter", filter_)
        return self


BACKEND_BLOCKS = {"script", "tts", "asr", "emotion"}


def _yaml_path(loc: tuple[Any, ...]) -> str:
    """pydantic puts the union member's tag into the location (script.openai.temperature): drop it."""
    parts = [str(p) for i, p in enumerate(loc) if not (i > 0 and str(loc[i - 1]) in BACKEND_BLOCKS)]
    return ".".join(parts) or "<root>"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _models_in(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [m for arg in get_args(annotation) for m in _models_in(arg)]
    return [annotation] if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []


def valid_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys a config block at `loc` accepts (a union's tag in `loc` picks its member)."""
    models: list[type[BaseModel]] = [BuildConfig]
    for part in loc:
        found: list[type[BaseModel]] = []
        for model in models:
            if str(part) in model.model_fields:
                found += _models_in(model.model_fields[str(part)].annotation)
            elif "backend" in model.model_fields and model.model_fields["backend"].default == part:
                found.append(model)
        models = found
    return sorted({name for model in models for name in model.model_fields})


def parse_config(data: Any, source: str = "<config>") -> BuildConfig:
    if not isinstance(data, dict):
        raise ConfigError(source, "top level must be a mapping")
    try:
        return BuildConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(p for p in err["loc"] if not str(p).startswith("function-after"))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(loc[-1]), valid_keys(loc[:-1]), n=1, cutoff=0.6)
            msg = f"unknown key; did you mean {close[0]!r}?" if close else "unknown key"
        raise ConfigError(f"{source}: {_yaml_path(loc)}", msg) from None


def _from_working_dir(key: str, value: Any) -> Any:
    """An override is a command-line argument: its relative path is relative to the working directory."""
    field = BuildConfig.model_fields.get(key)
    kind = path_kind(field) if field else None
    return resolve_path(value, kind, Path.cwd()) if kind and isinstance(value, str) else value


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> tuple[BuildConfig, Path]:
    """Load and validate a YAML config; returns the config, its paths made absolute by the one rule of
    config/paths.py (relative to the config file; an override's relative to the working directory), and
    the config file's directory."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), "config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(where, f"malformed YAML ({getattr(exc, 'problem', None) or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "not UTF-8 text") from None
    if data is None or data == {}:
        raise ConfigError(str(path), "config is empty; start from configs/smoke.yaml")
    if isinstance(data, dict) and overrides:
        data = {**data, **{k: _from_working_dir(k, v) for k, v in overrides.items() if v is not None}}
    base = path.parent.resolve()
    return resolve_paths(parse_config(data, str(path)), base), base
