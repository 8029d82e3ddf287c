"""transformers ASR and audio-classification adapters, run for real on tiny random models built here."""

import json

import numpy as np
import pytest

from empathy_data.backends import registry as backends
from empathy_data.config.model import ClassifierEmotion, FilterConfig, TransformersASR
from tests.helpers import sine

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
# CUDA runs where a GPU is present (skipped in CI, which has none).
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def tiny_wav2vec2_config(**extra):
    return transformers.Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, classifier_proj_size=8, **extra,
    )  # fmt: skip


def feature_extractor():
    return transformers.Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True
    )


@pytest.fixture(scope="module")
def asr_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-ctc")
    vocab = {"<pad>": 0, "<unk>": 1, "|": 2, **{c: i + 3 for i, c in enumerate("abcdefghijklmnopqrstuvwxyz'")}}
    (path / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = transformers.Wav2Vec2CTCTokenizer(str(path / "vocab.json"), word_delimiter_token="|")
    transformers.Wav2Vec2Processor(feature_extractor=feature_extractor(), tokenizer=tokenizer).save_pretrained(path)
    transformers.set_seed(0)
    transformers.Wav2Vec2ForCTC(tiny_wav2vec2_config(vocab_size=len(vocab), pad_token_id=0)).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-ser")
    labels = ["ang", "hap", "neu", "sad"]
    config = tiny_wav2vec2_config(
        num_labels=4, id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)}
    )
    transformers.set_seed(0)
    transformers.Wav2Vec2ForSequenceClassification(config).save_pretrained(path)
    feature_extractor().save_pretrained(path)
    return path


@pytest.mark.parametrize("device", DEVICES)
def test_transformers_asr_transcribes_a_batch(asr_dir, device):
    config = FilterConfig(asr=TransformersASR(model=str(asr_dir), batch_size=2, device=device))
    asr = backends.asr_backend(config)
    texts = asr.transcribe([sine(seconds=1.0), sine(440, seconds=0.5), sine(330, seconds=0.7)], ["en", "en", "zh"])
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    assert asr.identity == {"backend": "transformers-asr", "model": str(asr_dir)}


@pytest.mark.parametrize("device", DEVICES)
def test_transformers_emotion_maps_labels_and_sums_probabilities(classifier_dir, device):
    config = ClassifierEmotion(
        backend="transformers", model=str(classifier_dir), device=device,
        label_map={"ang": "angry", "hap": "happy", "neu": "neutral", "sad": "sad"}, min_prob=0.99,
    )  # fmt: skip
    check = backends.emotion_backend(FilterConfig(emotion=config))
    raw = check.raw_scores(sine(seconds=1.0))
    assert set(raw) == {"ang", "hap", "neu", "sad"} and abs(sum(raw.values()) - 1) < 1e-4
    result = check.check(sine(seconds=1.0, rate=22050), None, 22050, "sad")
    assert result.predicted in {"angry", "happy", "neutral", "sad"}
    assert result.passed == (result.predicted == "sad")
    merged = ClassifierEmotion(
        backend="transformers", model=str(classifier_dir), label_map={"ang": "angry", "sad": "angry"}
    )
    check = backends.emotion_backend(FilterConfig(emotion=merged))
    result = check.check(sine(seconds=1.0), None, 16000, "angry")
    assert result.predicted == "angry" and result.score == pytest.approx(raw["ang"] + raw["sad"], abs=1e-3)


def test_unmapped_classifier_output_fails_the_item(classifier_dir):
    config = ClassifierEmotion(backend="transformers", model=str(classifier_dir), label_map={"xyz": "angry"})
    check = backends.emotion_backend(FilterConfig(emotion=config))
    with pytest.raises(ValueError, match="no label that label_map maps"):
        check.check(np.zeros(16000, np.float32), None, 16000, "angry")


def test_transformers_asr_one_bad_clip_fails_only_itself_and_an_oom_fails_the_chunk(asr_dir):
    from empathy_data.core.errors import InfrastructureError

    config = FilterConfig(asr=TransformersASR(model=str(asr_dir), batch_size=4))
    asr = backends.asr_backend(config)
    texts = asr.transcribe([sine(seconds=1.0), np.zeros((2, 3, 10), np.float32), sine(330, seconds=0.7)], ["en"] * 3)
    assert isinstance(texts[0], str) and isinstance(texts[2], str)
    assert isinstance(texts[1], Exception)  # not mono audio: that clip's own error
    pipe = asr.pipe

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA failed with error out of memory")

    asr.pipe = out_of_memory
    try:
        with pytest.raises(InfrastructureError, match="asr: RuntimeError: CUDA failed"):
            asr.transcribe([sine(seconds=1.0)], ["en"])
    finally:
        asr.pipe = pipe


def test_classifier_batches_score_as_one_at_a_time_and_a_bad_clip_fails_alone(classifier_dir):
    from empathy_data.stages.filter.base import EmotionItem

    label_map = {"ang": "angry", "hap": "happy", "neu": "neutral", "sad": "sad"}

    def check(batch_size):
        config = ClassifierEmotion(backend="transformers", model=str(classifier_dir), label_map=label_map,
                                   batch_size=batch_size)  # fmt: skip
        return backends.emotion_backend(FilterConfig(emotion=config))

    # equal lengths: no padding, so a batch must give each clip exactly its own scores
    clips = [sine(f, seconds=1.0, rate=22050) for f in (220, 330, 440, 550, 660)]
    items = [EmotionItem(clip, None, 22050, emotion) for clip, emotion in zip(clips, ["sad", "happy", "angry", "sad", "happy"], strict=True)]
    single, batched = check(1), check(3)
    one_at_a_time = single.check_batch(items)
    assert batched.check_batch(items) == one_at_a_time
    assert [r.predicted for r in one_at_a_time] == [single.check(i.audio, None, 22050, i.emotion).predicted for i in items]
    bad = EmotionItem(np.zeros((2, 3, 10), np.float32), None, 22050, "sad")
    mixed = batched.check_batch([items[0], bad, items[1]])
    assert isinstance(mixed[1], Exception) and [mixed[0], mixed[2]] == one_at_a_time[:2]
    assert batched.identity["batch_size"] == 3 and "batch_size" not in single.identity
