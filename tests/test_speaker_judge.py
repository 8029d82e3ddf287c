import numpy as np
import pytest

from empathy_data.config.model import SynthesizeConfig
from empathy_data.core.audio import resample
from empathy_data.core.errors import ConfigError, InfrastructureError
from empathy_data.core.resources import speaker_pool_path
from empathy_data.planning.speakers import load_pool
from empathy_data.records.reasons import Reason
from empathy_data.stages.filter import speaker
from empathy_data.stages.synthesize.base import TTSRequest
from empathy_data.stages.synthesize.espeak import EspeakTTS
from empathy_data.stages.synthesize.prosody import prosody_for
from empathy_data.stages.synthesize.stage import postprocess
from tests.helpers import REPO

pytest.importorskip("resemblyzer")

# Proposed defaults, from Resemblyzer on the builtin espeak pool (30 en voices x 7 emotions x 3 sentences).
# A turn against one other turn of its own voice: min 0.695 (sad vs fearful), 1st percentile 0.751; a turn
# of another voice against two turns of the first: mean 0.66 (other gender), 0.78 (same gender). The means
# of two different pool voices: 0.79 on average, 0.95 at the 95th percentile.
MIN_CONSISTENCY = 0.70
MAX_USER_ASSISTANT_SIMILARITY = 0.95

USER_A, USER_B, ASSISTANT_C = "espeak-en-f-adult-1", "espeak-en-m-adult-2", "espeak-en-m-youngadult-2"
# (role, voice, emotion, text): the user's voice is swapped at turn 4
DIALOGUE = [
    ("user", USER_A, "neutral", "I lost my wallet on the bus this morning and I have no idea what to do now."),
    ("assistant", ASSISTANT_C, None, "That sounds really stressful, but we can sort it out step by step."),
    ("user", USER_A, "sad", "It had my bank cards and a photo of my grandmother in it."),
    ("assistant", ASSISTANT_C, None, "Let us call the bus company first and then block the cards."),
    ("user", USER_B, "angry", "I already called them twice and nobody answered the phone at all."),
    ("assistant", ASSISTANT_C, None, "That is frustrating. Their lost property office opens again at nine."),
]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """torch's two OpenMP threads spin while the other core is busy (another test process): 10-40x slower."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def clips() -> list[tuple[np.ndarray, int]]:
    """The dialogue's turns as the synthesize stage writes them (trimmed, 16 kHz, loudness-normalised)."""
    voices = {s.id: s for s in load_pool(speaker_pool_path("builtin", REPO)).speakers}
    requests = [TTSRequest(text, "en", voices[voice], emotion, None) for _, voice, emotion, text in DIALOGUE]
    tts, config = EspeakTTS(), SynthesizeConfig()
    audios = tts.synthesize(requests)
    return [
        (postprocess(audio, tts.sample_rate, config, prosody_for(r.emotion, None).gain_db), config.sample_rate)
        for audio, r in zip(audios, requests, strict=True)
    ]


@pytest.fixture(scope="module")
def resemblyzer():
    return speaker.ResemblyzerEncoder(batch_size=5)


@pytest.fixture(scope="module")
def embeddings(resemblyzer, clips) -> list[np.ndarray]:
    results = resemblyzer.embed_batch(clips)
    assert all(isinstance(e, np.ndarray) for e in results), results
    return results


def test_batched_resemblyzer_equals_embed_utterance(resemblyzer, clips, embeddings):
    from resemblyzer import preprocess_wav

    # batch_size 5 puts partials of several clips in one network call and splits clips across calls
    assert sum(len(resemblyzer.partials(*clip)) for clip in clips) > 10
    for (audio, rate), embedding in zip(clips, embeddings, strict=True):
        expected = resemblyzer.encoder.embed_utterance(preprocess_wav(resample(audio, rate, 16000)))
        np.testing.assert_allclose(embedding, expected, atol=1e-5)
        assert abs(np.linalg.norm(embedding) - 1) < 1e-5
    # another sample rate goes through the same resampler
    audio, rate = clips[0]
    [at_24k] = resemblyzer.embed_batch([(resample(audio, rate, 24000), 24000)])
    assert speaker.cosine(at_24k, embeddings[0]) > 0.99


def test_voice_swapped_mid_dialogue_is_caught(embeddings):
    roles = [role for role, *_ in DIALOGUE]
    consistency = speaker.role_consistency(embeddings, roles)
    assert consistency[4] < MIN_CONSISTENCY, consistency
    assert all(c > MIN_CONSISTENCY for i, c in enumerate(consistency) if i != 4), consistency
    unswapped = [embeddings[i] for i in (0, 1, 2, 3, 5)]
    apart = speaker.voice_distinctness(unswapped, ["user", "assistant", "user", "assistant", "assistant"])
    assert apart < MAX_USER_ASSISTANT_SIMILARITY, apart


def test_a_bad_clip_fails_only_itself(resemblyzer, clips, embeddings):
    audio, rate = clips[1]
    nan = audio.copy()
    nan[100] = np.nan
    batch = [clips[0], (np.zeros(0, np.float32), rate), (nan, rate), (np.zeros(rate, np.float32), rate), clips[1]]
    results = resemblyzer.embed_batch(batch)
    assert [type(r).__name__ for r in results] == ["ndarray", "ValueError", "ValueError", "ValueError", "ndarray"]
    np.testing.assert_allclose(results[0], embeddings[0], atol=1e-5)
    np.testing.assert_allclose(results[4], embeddings[1], atol=1e-5)
    assert resemblyzer.embed_batch([(nan, rate)])[0].args == ("clip has NaN or infinite samples",)


def test_out_of_memory_fails_the_call(resemblyzer, clips, monkeypatch):
    def oom(mels):
        raise MemoryError("cannot allocate")

    monkeypatch.setattr(resemblyzer, "forward", oom)
    with pytest.raises(InfrastructureError, match="speaker: MemoryError"):
        resemblyzer.embed_batch(clips[:2])


def test_judges_over_embeddings():
    x, y = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    roles = ["user", "assistant", "user", "user"]
    consistency = speaker.role_consistency([x, y, x, y], roles)
    assert consistency[1] is None
    assert consistency[0] == pytest.approx(np.sqrt(0.5)) and consistency[3] == pytest.approx(0.0)
    assert speaker.voice_distinctness([x, y], ["user", "assistant"]) == pytest.approx(0.0)
    assert speaker.voice_distinctness([x, x], ["user", "user"]) is None
    assert speaker.reference_similarity(x, 3 * x) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        speaker.role_consistency([x], roles)


def tiny_xvector(path, feat_extract_norm: str):
    """A randomly initialised WavLMForXVector small enough to build in a test, saved with its extractor."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.WavLMConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
        feat_extract_norm=feat_extract_norm, do_stable_layer_norm=feat_extract_norm == "layer",
        tdnn_dim=(32, 32, 32, 32, 64), xvector_output_dim=16, num_labels=2,
        initializer_range=0.2,  # at 0.02 the random head's x-vectors have norms near 1e-6
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.WavLMForXVector(config).save_pretrained(path)
    extractor = transformers.Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=True
    )
    extractor.save_pretrained(path)
    return str(path)


@pytest.mark.parametrize("norm", ["layer", "group"])
def test_xvector_batch_equals_one_at_a_time(tmp_path, clips, norm):
    encoder = speaker.XVectorEncoder(tiny_xvector(tmp_path, norm), batch_size=4)
    assert encoder.identity == {"backend": "xvector", "model": str(tmp_path)}
    # padding reaches every frame through a GroupNorm feature encoder: those models take one clip per call
    assert encoder.batch_size == (4 if norm == "layer" else 1)
    audio, rate = clips[0]
    batch = [*clips, (np.zeros(0, np.float32), rate), (audio[: rate // 4], rate)]
    results = encoder.embed_batch(batch)
    assert [type(r).__name__ for r in results[-2:]] == ["ValueError", "ValueError"]
    for clip, embedding in zip(clips, results, strict=False):
        [alone] = encoder.embed_batch([clip])
        assert embedding.shape == (16,) and abs(np.linalg.norm(embedding) - 1) < 1e-5
        np.testing.assert_allclose(embedding, alone, atol=1e-5)


def test_xvector_missing_model_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        speaker.XVectorEncoder(str(tmp_path / "absent"))
    assert caught.value.where == "filter.speaker.model"
    assert "\n" not in caught.value.reason


def test_the_filter_stage_rejects_the_exchange_whose_user_voice_was_swapped(clips, tmp_path):
    """Through score_utterances with the configured judges: the swapped turn's exchange is rejected with
    `user.speaker`, the others pass, and the scores are kept on every utterance."""
    from empathy_data.config.model import FilterConfig
    from empathy_data.core.audio import write_flac
    from empathy_data.records.schema import Utterance
    from empathy_data.stages.filter.audio_judges import AudioJudges
    from empathy_data.stages.filter.stage import exchange_verdict, score_utterances

    class ScriptedASR:  # hears exactly the script: only the speaker judge can reject here
        identity: dict = {}

        def transcribe(self, audios, languages):
            return [u.text for u in utterances][: len(audios)]

    utterances = []
    for i, ((role, voice, emotion, text), (audio, rate)) in enumerate(zip(DIALOGUE, clips, strict=True)):
        write_flac(tmp_path / f"t{i}.flac", audio, rate)
        utterances.append(Utterance(
            dialogue_id="d", turn_index=i, role=role, text=text, speaker_id=voice, emotion=emotion,
            response_style=None, audio_path=f"t{i}.flac", sample_rate=rate, duration=len(audio) / rate, tts={},
        ))  # fmt: skip
    config = FilterConfig(speaker={"min_consistency": MIN_CONSISTENCY})
    judges = AudioJudges(config, speaker.ResemblyzerEncoder())
    asr = ScriptedASR()
    scores = score_utterances(utterances, {"d": "en"}, tmp_path, asr, None, config.thresholds, judges)
    verdicts = [exchange_verdict(scores[2 * k], scores[2 * k + 1]) for k in range(3)]
    assert verdicts[:2] == [("accepted", []), ("accepted", [])]
    assert verdicts[2] == ("rejected", [Reason(stage="filter", check="user.speaker")])
    assert scores[4].speaker_consistency < MIN_CONSISTENCY < min(scores[0].speaker_consistency, scores[2].speaker_consistency)
    assert all(s.voice_similarity is not None for s in scores[1::2]) and scores[0].voice_similarity is None
    assert all(s.checks["voice_distinct"] == "pass" for s in scores[1::2])
    # without the judge the swap goes through: the test fails if the filter stops asking it
    unjudged = score_utterances(utterances, {"d": "en"}, tmp_path, asr, None, config.thresholds)
    assert exchange_verdict(unjudged[4], unjudged[5]) == ("accepted", [])


def test_cloned_turns_are_compared_with_their_reference_clip(clips, tmp_path):
    """`reference`: a turn against the pool clip a cloning TTS rendered it from; a silent reference clip
    fails that check (a rejection), it does not crash the chunk or fail the item."""
    from empathy_data.config.model import FilterConfig
    from empathy_data.core.audio import write_flac
    from empathy_data.records.schema import Utterance
    from empathy_data.stages.filter.audio_judges import AudioJudges

    write_flac(tmp_path / "ref-a.flac", clips[2][0], clips[2][1])  # voice A, another sentence
    write_flac(tmp_path / "silent.flac", np.zeros(16000, dtype=np.float32), 16000)
    utterances = [
        Utterance(dialogue_id="d", turn_index=i, role=role, text=text, speaker_id=voice, emotion=emotion,
                  response_style=None, audio_path=f"t{i}.flac", sample_rate=16000, duration=1.0, tts={})
        for i, (role, voice, emotion, text) in enumerate(DIALOGUE[:2])
    ]  # fmt: skip
    references = {0: tmp_path / "ref-a.flac", 1: tmp_path / "silent.flac"}
    judges = AudioJudges(FilterConfig(speaker={"min_reference_similarity": 0.75}), speaker.ResemblyzerEncoder())
    verdicts = judges.judge(utterances, {0: clips[0], 1: clips[1]}, lambda utt: references[utt.turn_index])
    assert verdicts[0].error is None and verdicts[0].checks["reference"] == "pass"
    assert verdicts[0].fields["speaker_similarity"] > 0.75
    assert verdicts[1].error is None and verdicts[1].checks["reference"] == "fail"
