"""Adapters for libraries with no weights here (vLLM, CosyVoice2, XTTS-v2, emotion2vec): the adapter
turns our request into the right library call and maps the result back. Fake modules stand in for the
libraries; they record every call."""

import json
import sys
import types

import numpy as np
import pytest
import torch

from empathy_data.config.model import ClassifierEmotion, CosyVoice2Synth, ValidationRules, VLLMScript, XTTSSynth
from empathy_data.core.errors import BackendUnavailable, InfrastructureError
from empathy_data.records.reasons import texts
from empathy_data.records.schema import ReferenceClip, Script, ScriptTurn
from empathy_data.stages.script.stage import ScriptRun, attempt_seed, write_scripts
from empathy_data.stages.synthesize.base import TTSRequest
from tests.helpers import good_reply, make_context

CALLS: list[tuple] = []


@pytest.fixture(autouse=True)
def _clear():
    CALLS.clear()


def install(monkeypatch, name: str, **attrs):
    module = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)
    return module


# --- vLLM -------------------------------------------------------------------------------------------
class FakeSamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


class FakeStructuredOutputsParams:
    def __init__(self, json):
        self.json = json


class FakeLLM:
    cut_at: int | None = None  # like a real engine at max_tokens: text cut short, finish_reason "length"

    def __init__(self, **kwargs):
        CALLS.append(("LLM", kwargs))

    def chat(self, conversations, params, use_tqdm=True):
        CALLS.append(("chat", conversations, params))
        outs = []
        for p in params:
            n = p.kwargs["structured_outputs"].json["properties"]["exchanges"]["minItems"]
            text, finish = good_reply(n), "stop"
            if self.cut_at is not None:
                text, finish = text[: self.cut_at], "length"
            outs.append(types.SimpleNamespace(outputs=[types.SimpleNamespace(text=text, finish_reason=finish)]))
        return outs


@pytest.fixture
def fake_vllm(monkeypatch):
    install(monkeypatch, "vllm", LLM=FakeLLM, SamplingParams=FakeSamplingParams)
    install(monkeypatch, "vllm.sampling_params", StructuredOutputsParams=FakeStructuredOutputsParams)


def test_vllm_batches_every_pending_spec_in_one_chat_call(fake_vllm, tmp_path):
    from empathy_data.stages.script.vllm_offline import VLLMChat

    ctx = make_context(tmp_path, num_dialogues=4, chunk_size=4)
    config = VLLMScript(model="/models/qwen", tensor_parallel_size=2, max_model_len=4096, temperature=0.7,
                        frequency_penalty=0.4, presence_penalty=0.3)  # fmt: skip
    chat = VLLMChat(config)
    specs = ctx.planner.chunk(0)
    scripts, outcomes = write_scripts(specs, ScriptRun(chat, ctx.prompts, ValidationRules(), 2, 64))
    assert len(scripts) == 4 and not outcomes
    (name, kwargs), (_, conversations, params) = CALLS
    assert kwargs == {"model": "/models/qwen", "tensor_parallel_size": 2, "gpu_memory_utilization": 0.85,
                      "dtype": "auto", "max_model_len": 4096}  # fmt: skip
    assert len(conversations) == 4 and conversations[0][0]["role"] == "system"
    assert params[0].kwargs["temperature"] == 0.7 and params[0].kwargs["seed"] == scripts[0].llm["seed"]
    assert params[0].kwargs["frequency_penalty"] == 0.4 and params[0].kwargs["presence_penalty"] == 0.3
    assert params[0].kwargs["structured_outputs"].json["properties"]["exchanges"]["minItems"] == specs[0].num_exchanges
    assert [s.spec.dialogue_id for s in scripts] == [s.dialogue_id for s in specs]
    assert scripts[0].llm["backend"] == "vllm"


def test_vllm_budget_follows_the_length_and_a_cut_off_reply_is_named(fake_vllm, tmp_path, monkeypatch):
    from empathy_data.stages.script.vllm_offline import VLLMChat

    ctx = make_context(tmp_path, num_dialogues=2, distributions={"exchanges": {6: 1.0}})
    chat = VLLMChat(VLLMScript(model="m", max_tokens=600, max_tokens_per_exchange=200))
    scripts, _ = write_scripts(ctx.planner.chunk(0), ScriptRun(chat, ctx.prompts, ValidationRules(), 1, 8))
    assert len(scripts) == 2 and CALLS[-1][2][0].kwargs["max_tokens"] == 600 + 5 * 200
    monkeypatch.setattr(FakeLLM, "cut_at", 50)
    _, outcomes = write_scripts(ctx.planner.chunk(0), ScriptRun(chat, ctx.prompts, ValidationRules(), 1, 8))
    assert [o.verdict for o in outcomes] == ["rejected", "rejected"]
    assert texts(outcomes[0].reasons) == ["script: cut_off: reply reached max_tokens 1600 before its JSON closed"]


def test_vllm_engine_error_fails_the_chunk_not_its_items(fake_vllm, tmp_path, monkeypatch):
    from empathy_data.stages.script.vllm_offline import VLLMChat

    monkeypatch.setattr(FakeLLM, "chat", lambda self, *a, **k: (_ for _ in ()).throw(RuntimeError("CUDA OOM")))
    ctx = make_context(tmp_path)
    with pytest.raises(InfrastructureError, match="llm: RuntimeError: CUDA OOM"):
        write_scripts(ctx.planner.chunk(0), ScriptRun(VLLMChat(VLLMScript(model="m")), ctx.prompts, ValidationRules(), 2, 8))


def test_vllm_replies_are_journaled_part_by_part_before_an_engine_crash(fake_vllm, tmp_path, monkeypatch):
    from empathy_data.stages.script.journal import ReplyJournal
    from empathy_data.stages.script.vllm_offline import VLLMChat

    chat = FakeLLM.chat
    calls = {"n": 0}

    def crash_on_second_part(self, conversations, params, use_tqdm=True):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return chat(self, conversations, params, use_tqdm)

    monkeypatch.setattr(FakeLLM, "chat", crash_on_second_part)
    ctx = make_context(tmp_path)
    journal = ReplyJournal(tmp_path / "journal.jsonl")
    engine = VLLMChat(VLLMScript(model="m", max_in_flight=1))  # one request per part
    with pytest.raises(InfrastructureError, match="illegal memory access"):
        write_scripts(ctx.planner.chunk(0), ScriptRun(engine, ctx.prompts, ValidationRules(), 2, 8, journal=journal))
    assert journal.sent == 1 and len((tmp_path / "journal.jsonl").read_text().splitlines()) == 1


def test_vllm_input_refused_fails_only_that_request(fake_vllm, tmp_path, monkeypatch):
    from empathy_data.stages.script.vllm_offline import VLLMChat

    ctx = make_context(tmp_path)
    specs = ctx.planner.chunk(0)
    too_long = specs[1].dialogue_id
    chat = FakeLLM.chat

    def refuse_one(self, conversations, params, use_tqdm=True):
        if any(p.kwargs["seed"] == attempt_seed(too_long, 0) for p in params):
            raise ValueError("prompt is longer than the maximum model length")
        return chat(self, conversations, params, use_tqdm)

    monkeypatch.setattr(FakeLLM, "chat", refuse_one)
    scripts, outcomes = write_scripts(specs, ScriptRun(VLLMChat(VLLMScript(model="m")), ctx.prompts, ValidationRules(), 1, 8))
    assert [s.spec.dialogue_id for s in scripts] == [specs[0].dialogue_id]
    assert [o.dialogue_id for o in outcomes] == [too_long] and "ValueError" in str(outcomes[0].reasons[0])


def test_missing_vllm_is_a_one_line_install_hint(monkeypatch):
    from empathy_data.stages.script.vllm_offline import VLLMChat

    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(BackendUnavailable, match=r"run `vllm serve` in its own and use script.backend openai"):
        VLLMChat(VLLMScript(model="m"))


# --- CosyVoice2 ---------------------------------------------------------------------------------------
class FakeCosyVoice2:
    sample_rate = 24000

    def __init__(self, model_dir, **kwargs):
        CALLS.append(("CosyVoice2", model_dir, kwargs))

    def add_zero_shot_spk(self, prompt_text, prompt_wav, zero_shot_spk_id):
        CALLS.append(("add_spk", prompt_text, prompt_wav, zero_shot_spk_id))
        return True

    def inference_instruct2(self, text, instruct_text, prompt_wav, zero_shot_spk_id="", stream=False, speed=1.0):
        CALLS.append(("instruct2", text, instruct_text, prompt_wav, stream, speed))
        assert zero_shot_spk_id, "the clip's features come from the speaker cache"
        yield {"tts_speech": torch.ones(1, 100)}
        yield {"tts_speech": torch.rand(1, 50)}  # sampled, like the real speech-token LM


def speaker_with_clips(tmp_path):
    spec = make_context(tmp_path).planner.spec(0)
    clips = {
        "neutral": [ReferenceClip(path="/pool/a/neutral.wav", transcript="hello")],
        "sad": [ReferenceClip(path="/pool/a/sad.wav", transcript="oh no")],
    }
    return spec.user.model_copy(update={"clips": clips})


def test_cosyvoice2_instruct_with_emotion_and_matching_clip(monkeypatch, tmp_path):
    install(monkeypatch, "cosyvoice")
    install(monkeypatch, "cosyvoice.cli")
    install(monkeypatch, "cosyvoice.cli.cosyvoice", CosyVoice2=FakeCosyVoice2)
    from empathy_data.stages.synthesize.cosyvoice import CosyVoice2TTS

    tts = CosyVoice2TTS(CosyVoice2Synth(model_dir=str(tmp_path), speed=1.1))
    speaker = speaker_with_clips(tmp_path)
    sad, happy = tts.synthesize(
        [TTSRequest("I miss her.", "en", speaker, "sad", None), TTSRequest("Great news!", "en", speaker, "happy", None)]
    )
    assert tts.sample_rate == 24000 and sad.shape == (150,) and sad.dtype == np.float32
    assert CALLS[0] == (
        "CosyVoice2",
        str(tmp_path),
        {"load_jit": False, "load_trt": False, "load_vllm": False, "fp16": False},
    )
    renders = [c for c in CALLS if c[0] == "instruct2"]
    assert renders[0] == ("instruct2", "I miss her.", "用伤心的语气说<|endofprompt|>", "/pool/a/sad.wav", False, 1.1)
    assert renders[1][2] == "用开心的语气说<|endofprompt|>" and renders[1][3] == "/pool/a/neutral.wav"
    # each (clip, instruction) is added to CosyVoice's speaker cache once, however many turns use it
    tts.synthesize([TTSRequest("Still sad.", "en", speaker, "sad", None)])
    added = [c for c in CALLS if c[0] == "add_spk"]
    assert [(c[1], c[2]) for c in added] == [("用伤心的语气说<|endofprompt|>", "/pool/a/sad.wav"),
                                             ("用开心的语气说<|endofprompt|>", "/pool/a/neutral.wav")]  # fmt: skip


def test_cosyvoice2_accelerated_paths_reach_its_constructor_and_the_key(monkeypatch, tmp_path):
    from empathy_data.backends.registry import synthesize_identity
    from empathy_data.config.model import SynthesizeConfig

    CALLS.clear()
    install(monkeypatch, "cosyvoice.cli.cosyvoice", CosyVoice2=FakeCosyVoice2)
    from empathy_data.stages.synthesize.cosyvoice import CosyVoice2TTS

    fast = CosyVoice2Synth(model_dir=str(tmp_path), load_trt=True, load_vllm=True)
    CosyVoice2TTS(fast)
    assert CALLS[0][2] == {"load_jit": False, "load_trt": True, "load_vllm": True, "fp16": False}
    plain = synthesize_identity(SynthesizeConfig(tts=CosyVoice2Synth(model_dir=str(tmp_path))))
    assert "load_trt" not in plain["settings"]["tts"]  # keys of earlier builds stay valid
    assert synthesize_identity(SynthesizeConfig(tts=fast)) != plain


def test_cosyvoice2_needs_a_local_model_dir(monkeypatch, tmp_path):
    install(monkeypatch, "cosyvoice")
    install(monkeypatch, "cosyvoice.cli")
    install(monkeypatch, "cosyvoice.cli.cosyvoice", CosyVoice2=FakeCosyVoice2)
    from empathy_data.stages.synthesize.cosyvoice import CosyVoice2TTS

    with pytest.raises(BackendUnavailable, match="is not a directory"):
        CosyVoice2TTS(CosyVoice2Synth(model_dir=str(tmp_path / "missing")))


# --- XTTS-v2 ------------------------------------------------------------------------------------------
class FakeXttsConfig:
    def load_json(self, path):
        CALLS.append(("load_json", path))


class FakeXtts:
    @classmethod
    def init_from_config(cls, config):
        return cls()

    def load_checkpoint(self, config, checkpoint_dir, eval):
        CALLS.append(("load_checkpoint", checkpoint_dir, eval))

    def to(self, device):
        CALLS.append(("to", device))

    def get_conditioning_latents(self, audio_path):
        CALLS.append(("latents", tuple(audio_path)))
        return "latent", "embedding"

    def inference(self, text, language, gpt_latent, speaker_embedding):
        CALLS.append(("inference", text, language, gpt_latent, speaker_embedding))
        return {"wav": torch.rand(240)}  # sampled, like the real GPT decoder


def test_xtts_clones_from_the_emotion_clip_and_caches_latents(monkeypatch, tmp_path):
    for name in ("TTS", "TTS.tts", "TTS.tts.configs", "TTS.tts.models"):
        install(monkeypatch, name)
    install(monkeypatch, "TTS.tts.configs.xtts_config", XttsConfig=FakeXttsConfig)
    install(monkeypatch, "TTS.tts.models.xtts", Xtts=FakeXtts)
    (tmp_path / "config.json").write_text("{}")
    from empathy_data.stages.synthesize.xtts import XTTS

    monkeypatch.delenv("COQUI_TOS_AGREED", raising=False)
    with pytest.raises(BackendUnavailable, match="accept_license: XTTS-v2 weights are under the Coqui Public Model"):
        XTTS(XTTSSynth(model_dir=str(tmp_path), device="cpu"))
    tts = XTTS(XTTSSynth(model_dir=str(tmp_path), device="cpu", accept_license=True))
    speaker = speaker_with_clips(tmp_path)
    out = tts.synthesize(
        [
            TTSRequest("a", "zh", speaker, "sad", None),
            TTSRequest("b", "zh", speaker, "sad", None),
            TTSRequest("c", "en", speaker, None, "celebratory"),
        ]  # fmt: skip
    )
    assert tts.sample_rate == 24000 and all(o.shape == (240,) for o in out)
    latents = [c for c in CALLS if c[0] == "latents"]
    assert latents == [("latents", ("/pool/a/sad.wav",)), ("latents", ("/pool/a/neutral.wav",))]
    inference = [c for c in CALLS if c[0] == "inference"]
    assert inference[0] == ("inference", "a", "zh-cn", "latent", "embedding") and inference[2][2] == "en"


def test_sampling_tts_renders_the_same_request_the_same_way(monkeypatch, tmp_path):
    install(monkeypatch, "cosyvoice")
    install(monkeypatch, "cosyvoice.cli")
    install(monkeypatch, "cosyvoice.cli.cosyvoice", CosyVoice2=FakeCosyVoice2)
    for name in ("TTS", "TTS.tts", "TTS.tts.configs", "TTS.tts.models"):
        install(monkeypatch, name)
    install(monkeypatch, "TTS.tts.configs.xtts_config", XttsConfig=FakeXttsConfig)
    install(monkeypatch, "TTS.tts.models.xtts", Xtts=FakeXtts)
    (tmp_path / "config.json").write_text("{}")
    from empathy_data.stages.synthesize.cosyvoice import CosyVoice2TTS
    from empathy_data.stages.synthesize.xtts import XTTS

    speaker = speaker_with_clips(tmp_path)
    one, other = (TTSRequest("I miss her.", "en", speaker, "sad", None, seed) for seed in (1, 2))
    for tts in (CosyVoice2TTS(CosyVoice2Synth(model_dir=str(tmp_path))), XTTS(XTTSSynth(model_dir=str(tmp_path)))):
        first, again, reseeded = tts.synthesize([one, one, other])
        torch.rand(7)  # whatever else draws from the generator in between
        assert np.array_equal(first, again) and np.array_equal(first, tts.synthesize([one])[0])
        assert not np.array_equal(first, reseeded)


def test_turn_seeds_differ_by_turn_and_by_script_seed(tmp_path):
    from empathy_data.stages.synthesize.stage import turn_requests

    ctx = make_context(tmp_path, distributions={"exchanges": {2: 1.0}})
    spec = ctx.planner.spec(0)
    turns = [ScriptTurn(role=t.role, text="Hello there, how are you?") for t in spec.turns]
    script = Script(spec=spec, turns=turns, reasoning=["note"] * 2, llm={"seed": 11})
    seeds = [r.seed for r in turn_requests(script)]
    assert len(set(seeds)) == 4 and seeds == [r.seed for r in turn_requests(script)]
    rewritten = script.model_copy(update={"llm": {"seed": 12}})
    assert not set(seeds) & {r.seed for r in turn_requests(rewritten)}


# --- emotion2vec (funasr) -----------------------------------------------------------------------------
class FakeAutoModel:
    def __init__(self, **kwargs):
        CALLS.append(("AutoModel", kwargs))

    def generate(self, audio, granularity, extract_embedding, fs):
        CALLS.append(("generate", audio.shape, granularity, extract_embedding, fs))
        labels = ["生气/angry", "厌恶/disgusted", "恐惧/fearful", "开心/happy", "中立/neutral", "其他/other", "难过/sad",
                  "吃惊/surprised", "<unk>"]  # fmt: skip
        scores = [0.05, 0.0, 0.05, 0.6, 0.1, 0.1, 0.05, 0.05, 0.0]
        return [{"key": "x", "labels": labels, "scores": scores}]


def test_emotion2vec_maps_bilingual_labels(monkeypatch):
    install(monkeypatch, "funasr", AutoModel=FakeAutoModel)
    from empathy_data.stages.filter.emotion_classifier import classifier_check

    check = classifier_check(ClassifierEmotion(backend="emotion2vec", model="/models/emotion2vec_plus_large", hub="ms"))
    result = check.check(np.zeros(22050, np.float32), None, 22050, "happy")
    assert result.passed and result.predicted == "happy" and result.score == pytest.approx(0.6)
    assert CALLS[0] == (
        "AutoModel",
        {"model": "/models/emotion2vec_plus_large", "hub": "ms", "disable_update": True, "device": "cpu"},
    )
    assert CALLS[1] == ("generate", (16000,), "utterance", False, 16000)
    assert not check.check(np.zeros(16000, np.float32), None, 16000, "sad").passed


def test_backend_identities_are_json(monkeypatch, tmp_path, fake_vllm):
    from empathy_data.stages.script.vllm_offline import VLLMChat

    json.dumps(VLLMChat(VLLMScript(model="m")).identity)
