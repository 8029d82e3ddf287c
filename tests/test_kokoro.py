"""Kokoro-82M as the TTS: the real model from its PyPI parts, English and Mandarin, in the built-in pool's
voices (blends of its voice packs), heard by the embedded Whisper; threads are speed only."""

from __future__ import annotations

import numpy as np
import pytest

from empathy_data.backends.registry import key_of, synthesize_identity
from empathy_data.config.model import FasterWhisperASR, KokoroSynth, SynthesizeConfig, parse_config
from empathy_data.core.errors import ConfigError
from empathy_data.core.resources import speaker_pool_path
from empathy_data.planning.speakers import load_pool
from empathy_data.records.schema import Speaker
from empathy_data.stages.filter.asr import FasterWhisper
from empathy_data.stages.filter.metrics import error_rates
from empathy_data.stages.synthesize.base import TTSRequest
from empathy_data.stages.synthesize.kokoro import SAMPLE_RATE, KokoroTTS, blended_style, phoneme_pieces
from empathy_data.stages.synthesize.stage import postprocess
from tests.helpers import REPO

LINES = {"en": "I cannot believe what just happened at work today.", "zh": "明天我要去医院看奶奶。"}


@pytest.fixture(scope="module")
def kokoro():
    return KokoroTTS(KokoroSynth(threads=1))  # onnxruntime's threads spin: one per core of a pinned test lane


@pytest.fixture(scope="module")
def pool():
    return load_pool(speaker_pool_path("builtin", REPO, tts="kokoro"))


def test_the_builtin_pool_follows_the_tts_and_has_both_genders_in_both_languages(pool):
    assert pool.path.name == "kokoro.yaml"
    assert speaker_pool_path("builtin", REPO).name == "espeak.yaml"
    assert speaker_pool_path("builtin:kokoro", REPO) == pool.path
    with pytest.raises(ConfigError, match="no built-in pool 'piper'"):
        speaker_pool_path("builtin:piper", REPO)
    for language in ("en", "zh"):
        for gender in ("female", "male"):
            assert len(pool.matching(language, gender)) >= 2, (language, gender)


def test_the_pool_and_its_config_load_as_a_build_reads_them(tmp_path):
    config = parse_config({"synthesize": {"tts": {"backend": "kokoro"}}, "runner": {"cpus": 4, "max_workers": 2}})
    assert config.synthesize.tts.threads == 2  # the build's thread share
    assert key_of("tts", KokoroSynth(threads=1)) == key_of("tts", KokoroSynth(threads=8))
    espeak = synthesize_identity(SynthesizeConfig())
    assert synthesize_identity(config.synthesize) != espeak


@pytest.mark.slow  # the real model and Whisper: ~20 s
def test_en_and_zh_in_the_pool_voices_are_heard_as_written(kokoro, pool):
    asr = FasterWhisper(FasterWhisperASR())
    for (language, text), gender in zip(LINES.items(), ("female", "male"), strict=True):  # both of each, once
        for speaker in pool.matching(language, gender)[:1]:
            [audio] = kokoro.synthesize([TTSRequest(text, language, speaker, "neutral", None)])
            assert not isinstance(audio, Exception), audio
            seconds = len(audio) / SAMPLE_RATE
            assert 1.0 < seconds < 8.0, (language, gender, seconds)
            clip = postprocess(audio, SAMPLE_RATE, SynthesizeConfig(), 0.0)
            [heard] = asr.transcribe([clip], [language])
            wer, cer = error_rates(text, heard, language)
            assert (wer if language == "en" else cer) <= 0.25, (language, gender, heard)


@pytest.mark.slow
def test_the_planned_emotion_moves_the_speed_and_threads_change_nothing(kokoro, pool):
    speaker = pool.matching("en", "female")[0]
    text = "Nobody called me back."
    neutral, sad, fearful = (kokoro.render(TTSRequest(text, "en", speaker, e, None)) for e in ("neutral", "sad", "fearful"))
    assert len(sad) > len(neutral) > len(fearful)  # prosody.py: sad slower, fearful faster
    two_threads = KokoroTTS(KokoroSynth(threads=2)).render(TTSRequest(text, "en", speaker, "neutral", None))
    assert np.array_equal(two_threads, neutral)


def test_a_blend_mixes_the_packs_by_weight_and_an_unknown_pack_is_named():
    packs = {"a": np.zeros((510, 1, 256), np.float32), "b": np.ones((510, 1, 256), np.float32)}
    mixed = blended_style(packs, {"a": 1.0, "b": 3.0}, "speaker s")
    assert mixed.shape == (510, 256) and np.allclose(mixed, 0.75)
    with pytest.raises(ValueError, match=r"speaker s: voice.blend needs Kokoro voices from \['a', 'b'\], got \['c'\]"):
        blended_style(packs, {"c": 1.0}, "speaker s")


@pytest.mark.slow
def test_a_request_in_an_unknown_voice_fails_that_request_only(kokoro, pool):
    stranger = Speaker(id="x", gender="male", age_group="adult", language="en", voice={"blend": {"am_adam": 1.0}})
    good = pool.matching("en", "male")[0]
    results = kokoro.synthesize([TTSRequest("Hello there.", "en", stranger, None, None), TTSRequest("Hello there.", "en", good, None, None)])
    assert isinstance(results[0], Exception) and "am_adam" in str(results[0])
    assert isinstance(results[1], np.ndarray) and len(results[1]) > 0


def test_long_text_is_cut_into_pieces_the_model_takes():
    sentence = "a" * 200 + "."
    pieces = phoneme_pieces(" ".join([sentence] * 4) + " " + "b" * 700)
    assert all(len(p) <= 510 for p in pieces) and "".join(pieces).replace(" ", "") == (sentence * 4 + "b" * 700)


@pytest.mark.slow  # the real model
def test_espeaks_word_counts_are_not_warned_about_on_every_line(kokoro, pool, caplog):
    speaker = pool.matching("en", "male")[0]
    with caplog.at_level("WARNING"):
        # a reply from a build whose phonemes made phonemizer warn (espeak counts "it just" and "I'm" otherwise)
        text = ("It's okay if you're feeling nervous about your test results, it just takes time for the results to "
                "come back. I'm here to support you through this.")
        kokoro.render(TTSRequest(text, "en", speaker, "neutral", None))
    assert not [r for r in caplog.records if "words count mismatch" in r.getMessage()]
    assert kokoro.phonemes("It's 5 o'clock.", "en")  # phonemes still come back
