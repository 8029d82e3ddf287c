import numpy as np
import pytest

from empathy_data.config.model import SynthesizeConfig
from empathy_data.core.resources import speaker_pool_path
from empathy_data.planning.speakers import load_pool
from empathy_data.records.schema import Script, ScriptTurn
from empathy_data.stages.synthesize.base import TTSRequest
from empathy_data.stages.synthesize.espeak import EspeakTTS, voice_settings
from empathy_data.stages.synthesize.stage import synthesize_scripts
from tests.helpers import REPO, make_context


@pytest.fixture(scope="module")
def tts():
    return EspeakTTS()


def test_every_builtin_voice_speaks(tts):
    pool = load_pool(speaker_pool_path("builtin", REPO))
    requests = [
        TTSRequest(
            "Hello, how are you today?" if s.language == "en" else "你好，今天怎么样？", s.language, s, "neutral", None
        )
        for s in pool.speakers
    ]
    for speaker, audio in zip(pool.speakers, tts.synthesize(requests), strict=True):
        assert isinstance(audio, np.ndarray), (speaker.id, audio)
        assert len(audio) / tts.sample_rate > 0.5 and np.abs(audio).max() > 0.05, speaker.id


def test_emotion_changes_prosody(tts):
    speaker = load_pool(speaker_pool_path("builtin", REPO)).matching("en", "female", "adult")[0]
    text = "I really did not expect this to happen to me today."
    sad, angry = tts.synthesize([TTSRequest(text, "en", speaker, e, None) for e in ("sad", "angry")])
    assert len(sad) > 1.3 * len(angry)
    assert voice_settings(TTSRequest(text, "en", speaker, "sad", None))["pitch"] < speaker.voice["pitch"]


def test_unknown_voice_fails_that_request_only(tts):
    pool = load_pool(speaker_pool_path("builtin", REPO))
    good = pool.speakers[0]
    bad = good.model_copy(update={"voice": {"voice": "xx-nonexistent"}})
    results = tts.synthesize(
        [TTSRequest("Hello there.", "en", bad, None, None), TTSRequest("Hello.", "en", good, None, None)]
    )
    assert isinstance(results[0], ValueError) and isinstance(results[1], np.ndarray)


def test_stage_writes_audio_and_neutral_references(tmp_path, tts):
    ctx = make_context(tmp_path, distributions={"exchanges": {1: 1.0}})
    spec = ctx.planner.spec(0)
    script = Script(
        spec=spec,
        turns=[
            ScriptTurn(role="user", text="I lost my wallet on the bus."),
            ScriptTurn(role="assistant", text="Oh no, I am sorry."),
        ],
        reasoning=["note"],
        llm={},
    )
    config = SynthesizeConfig()
    utts, failures = synthesize_scripts([script], tts, config, tmp_path, neutral_reference=True)
    assert not failures and [u.turn_index for u in utts] == [0, 1]
    assert utts[0].reference_audio_path and not utts[1].reference_audio_path
    for u in utts:
        assert (tmp_path / u.audio_path).is_file() and u.sample_rate == 16000 and u.duration > 0.5


def test_a_batch_renders_the_same_whatever_was_rendered_before(tts):
    speaker = load_pool(speaker_pool_path("builtin", REPO)).matching("en", "male", "teen")[0]
    request = TTSRequest("I am fine, thank you.", "en", speaker, "happy", None)
    other = TTSRequest("Something else entirely, and longer.", "en", speaker, "sad", None)
    first = tts.synthesize([other, request])
    tts.synthesize([request, other, other])
    second = tts.synthesize([other, request])
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
