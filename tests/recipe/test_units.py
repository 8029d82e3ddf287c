import numpy as np
import pytest
from empathy_recipe.corpus import Corpus
from empathy_recipe.errors import RecipeError
from empathy_recipe.exporters import Options
from empathy_recipe.exporters.run import export
from empathy_recipe.units.cache import UnitCache
from empathy_recipe.units.load import load_tokenizer
from empathy_recipe.units.melspec import log_mel_spectrogram
from empathy_recipe.units.protocol import SpeechTokenizer
from empathy_recipe.units.s3 import S3Tokenizer

from tests.recipe.corpus_builder import build, flac, row
from tests.recipe.loader_checks import check_opens2s_line, check_osum_line, load_like_recipe, read_jsonl
from tests.recipe.tiny_tokenizers import glm_standin, s3_onnx


@pytest.fixture(scope="module")
def s3_path(tmp_path_factory):
    return s3_onnx(tmp_path_factory.mktemp("s3") / "speech_tokenizer_v1.onnx")


@pytest.fixture(scope="module")
def glm(tmp_path_factory):
    return glm_standin(tmp_path_factory.mktemp("glm"))


@pytest.fixture
def corpus(tmp_path):
    rows = [row(i, assistant_audio={"bytes": flac(4.0, 300 + 20 * i), "path": None}) for i in range(6)]
    rows.append(row(9, assistant_seconds=31.0))
    return Corpus.open(build(tmp_path / "c", {"train": rows}))


def test_log_mel_matches_transformers_whisper_features():
    from transformers import WhisperFeatureExtractor

    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(16000 * 2 + 123)).astype(np.float32)
    for n_mels in (80, 128):
        ours = log_mel_spectrogram(audio, n_mels)
        ref = WhisperFeatureExtractor(feature_size=n_mels)(
            audio, sampling_rate=16000, padding="longest", return_tensors="np"
        ).input_features[0]
        assert ours.shape == ref.shape == (n_mels, len(audio) // 160)
        np.testing.assert_allclose(ours, ref, atol=2e-4)


def test_s3_adapter_runs_the_onnx_graph_like_cosyvoice(s3_path):
    tok = load_tokenizer("s3", s3_path.parent)
    assert isinstance(tok, SpeechTokenizer) and isinstance(tok, S3Tokenizer)
    t = np.arange(16000 * 2) / 16000
    a, b = ((0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32) for f in (200, 900))
    ids = tok.encode(a, 16000)
    assert len(ids) == 100 and all(0 <= i < 4096 for i in ids)  # 200 frames, 50 Hz
    assert tok.encode(b, 16000) != ids
    assert tok.encode_batch([a, b], 16000) == [ids, tok.encode(b, 16000)]
    assert tok.encode(a[::2].copy(), 8000)[:90] == ids[:90]  # resampled to 16 kHz first
    with pytest.raises(ValueError, match="at most 30 s"):
        tok.encode(np.zeros(16000 * 31, np.float32), 16000)
    with pytest.raises(RecipeError, match="S3 tokenizer not found"):
        load_tokenizer("s3", s3_path.parent.parent)


def test_osum_with_units_every_line_passes_and_second_export_uses_the_cache(s3_path, corpus, tmp_path, monkeypatch):
    tok = S3Tokenizer(s3_path)
    calls = []
    real = tok.encode_batch
    monkeypatch.setattr(tok, "encode_batch", lambda audios, rate: calls.append(len(audios)) or real(audios, rate))
    result = export(corpus, "osum-echat", tmp_path / "s", Options(tasks=("chat", "emotion")), tok)
    assert result["skipped_by_reason"] == {"assistant_audio.too_long_for_tokenizer": 1}
    assert result["units"]["computed"] == 6 and result["units"]["cached"] == 0
    assert calls == [4, 2]  # one batch per row group (4 rows; then 3, one too long for the tokenizer)
    lines = read_jsonl(tmp_path / "s" / "train" / "data.list")
    chat = [x for x in lines if x["task"].startswith("<S2TCHAT>")]
    assert len(chat) == 6 and len(lines) == 12
    for line in lines:
        check_osum_line(line, units=True)
    assert all(x["task"] == "<S2TCHAT> <TEXT2TOKEN> <THINK>" and len(x["extra"]["speech_token"]) == 200 for x in chat)
    first = {x["key"]: x["extra"]["speech_token"] for x in chat}

    calls.clear()
    again = export(corpus, "osum-echat", tmp_path / "s", Options(tasks=("chat", "emotion")), tok)
    assert calls == [] and again["units"]["computed"] == 0 and again["units"]["cached"] == 6
    assert {x["key"]: x["extra"]["speech_token"] for x in read_jsonl(tmp_path / "s" / "train" / "data.list")
            if "speech_token" in x["extra"]} == first  # fmt: skip


def test_unit_cache_is_keyed_by_audio_and_tokenizer(tmp_path):
    class Counting:
        name, vocab_size = "count", 10

        def __init__(self, fp):
            self.fp, self.seen = fp, 0

        def fingerprint(self):
            return self.fp

        def encode(self, audio, rate):
            return [int(len(audio) % 10)]

        def encode_batch(self, audios, rate):
            self.seen += len(audios)
            return [self.encode(a, rate) for a in audios]

    a, b = np.zeros(5, np.float32), np.ones(7, np.float32)
    first = Counting("v1")
    cache = UnitCache(tmp_path / "u.sqlite", first, batch_size=1)
    assert cache.units([a, b, a], 16000) == [[5], [7], [5]] and first.seen == 2
    cache.close()
    again = UnitCache(tmp_path / "u.sqlite", Counting("v1"))
    assert again.units([b, a], 16000) == [[7], [5]] and again.tokenizer.seen == 0
    other = UnitCache(tmp_path / "u.sqlite", Counting("v2"))
    other.units([a], 16000)
    assert other.tokenizer.seen == 1


def test_glm4voice_adapter_with_a_standin_repo(glm, corpus, tmp_path):
    repo, model_dir = glm
    with pytest.raises(RecipeError, match="--tokenizer-repo"):
        load_tokenizer("glm-4-voice", model_dir)
    tok = load_tokenizer("glm-4-voice", model_dir, repo=repo)
    assert tok.vocab_size == 16384 and tok.fingerprint().startswith("glm-4-voice:")
    t = np.arange(int(16000 * 2.0)) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    ids = tok.encode(audio, 16000)
    assert len(ids) == 25 and all(0 <= i < 16384 for i in ids)  # 12.5 Hz
    long = np.concatenate([audio] * 16)  # 32 s: two segments, as GLM-4-Voice cuts at 30 s
    assert len(tok.encode(long, 16000)) == 400
    batch = tok.encode_batch([audio, audio[:16000]], 16000)
    assert batch[0] == ids and len(batch[1]) == 13  # 100 frames, mask strided by 2 then 4 (ceil), as in utils.py

    result = export(corpus, "opens2s", tmp_path / "o", Options(reasoning=True), tok)
    assert result["rows_written"] == 7 and result["units"]["tokenizer"] == "glm-4-voice"
    lines = read_jsonl(tmp_path / "o" / "train.jsonl")
    for line in lines:
        check_opens2s_line(line, units=True)
    assert len(load_like_recipe(tmp_path / "o" / "train.jsonl")) == 7
