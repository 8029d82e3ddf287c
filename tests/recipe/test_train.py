import numpy as np
import pytest
import torch
from empathy_recipe.corpus import Corpus
from empathy_recipe.data import IGNORE, AudioFeatures, ChatEncoder, Collator, ExchangeDataset, interleave
from empathy_recipe.data.sample import COLUMNS, SampleBuilder
from empathy_recipe.tiny import build_model, build_tokenizer
from empathy_recipe.train import TrainConfig, corpus_texts, train
from empathy_recipe.units.s3 import S3Tokenizer

from tests.recipe.corpus_builder import build, row, simple
from tests.recipe.tiny_tokenizers import s3_onnx

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return Corpus.open(simple(tmp_path_factory.mktemp("c"), n_train=16, n_test=0), ["train"])


def test_interleave_follows_the_n_to_m_streaming_order():
    assert interleave([1, 2, 3], [10, 11, 12, 13, 14, 15, 16], 1, 2) == [1, 10, 11, 2, 12, 13, 3, 14, 15, 16]
    assert interleave([1, 2, 3, 4, 5], [10], 2, 3) == [1, 2, 10, 3, 4, 5]
    assert interleave([1], [], 1, 2) == [1]


def test_chat_encoder_masks_everything_but_the_reply(corpus):
    tok = build_tokenizer(corpus_texts(corpus))
    enc = ChatEncoder(tok, unit_offset=len(tok), n_text=1, n_units=2)
    history = [{"role": "user", "text": "hello there"}, {"role": "assistant", "text": "hi how are you"}]
    out = enc.encode(history, 5, "i am here with you", units=[0, 3, 7])
    ids, labels = out["input_ids"], out["labels"]
    target = [i for i, lab in zip(ids, labels, strict=True) if lab != IGNORE]
    text = tok("i am here with you", add_special_tokens=False)["input_ids"]
    units = [len(tok) + u for u in (0, 3, 7)]
    assert target == [text[0], *units[:2], text[1], units[2], *text[2:], tok.convert_tokens_to_ids("<|im_end|>")]
    assert labels[: len(ids) - len(target)] == [IGNORE] * (len(ids) - len(target))  # prompt, history, audio
    assert ids.count(enc.audio_id) == 5
    assert tok.convert_tokens_to_ids("how") in ids[: len(ids) - len(target)]  # history is in the prompt


def test_dataset_deals_row_groups_to_ranks_and_is_deterministic(corpus):
    def keys(ds):
        return [(r["dialogue_id"]) for r in ds]

    build_row = lambda r: r  # noqa: E731
    full = keys(ExchangeDataset(corpus, build_row, seed=1, columns=["dialogue_id"]))
    assert sorted(full) == sorted(f"d{i:04d}" for i in range(16))
    assert full == keys(ExchangeDataset(corpus, build_row, seed=1, columns=["dialogue_id"]))
    other = ExchangeDataset(corpus, build_row, seed=1, columns=["dialogue_id"])
    other.set_epoch(1)
    assert keys(other) != full and sorted(keys(other)) == sorted(full)
    parts = [keys(ExchangeDataset(corpus, build_row, seed=1, columns=["dialogue_id"], rank=r, world_size=2)) for r in (0, 1)]
    assert not set(parts[0]) & set(parts[1]) and sorted(parts[0] + parts[1]) == sorted(full)
    loader = torch.utils.data.DataLoader(ExchangeDataset(corpus, build_row, seed=1, columns=["dialogue_id"]),
                                         batch_size=None, num_workers=2)  # fmt: skip
    assert sorted(keys(loader)) == sorted(full)  # two workers: every row once


def test_collator_pads_and_masks(corpus):
    tok = build_tokenizer(corpus_texts(corpus))
    builder = SampleBuilder(AudioFeatures(128, 4, 4), ChatEncoder(tok))
    samples = [s for s in ExchangeDataset(corpus, builder, columns=COLUMNS)][:3]
    batch = Collator(tok.pad_token_id)(samples)
    lengths = [len(s["input_ids"]) for s in samples]
    assert batch["input_ids"].shape == (3, max(lengths)) and batch["attention_mask"].sum(1).tolist() == lengths
    assert batch["input_features"].shape == (3, 128, 400)
    for i, n in enumerate(lengths):
        assert (batch["labels"][i, n:] == IGNORE).all() and (batch["input_ids"][i, n:] == tok.pad_token_id).all()
    # user audio of 1.5 / 2 / 2.5 / 3 s: 150..300 frames -> stride-2 conv -> stacks of 4
    audio_id = tok.convert_tokens_to_ids("<|AUDIO|>")
    for i, s in enumerate(samples):
        assert s["audio_tokens"] in (19, 25, 32, 38)
        assert int((batch["input_ids"][i] == audio_id).sum()) == s["audio_tokens"] == batch["audio_tokens"][i]


def test_masked_positions_carry_no_loss(corpus):
    tok = build_tokenizer(corpus_texts(corpus))
    builder = SampleBuilder(AudioFeatures(80, 4, 4), ChatEncoder(tok))
    batch = Collator(tok.pad_token_id)([s for s in ExchangeDataset(corpus, builder, columns=COLUMNS)][:2])
    model = build_model(len(tok), tok.convert_tokens_to_ids("<|AUDIO|>"))
    captured = {}
    lm_forward = model.lm.forward

    def spy(**kw):
        out = lm_forward(**kw)
        out.logits.retain_grad()
        captured["logits"] = out.logits
        return out

    model.lm.forward = spy
    loss = model(**batch).loss
    loss.backward()
    grad = captured["logits"].grad  # position t predicts labels[t + 1]
    shifted = torch.cat([batch["labels"][:, 1:], torch.full((2, 1), IGNORE)], dim=1)
    masked = shifted == IGNORE
    assert masked.any() and (~masked).any()
    assert grad[masked].abs().max() == 0
    assert (grad[~masked].abs().sum(-1) > 0).all()
    manual = torch.nn.functional.cross_entropy(captured["logits"][~masked], shifted[~masked])
    assert torch.allclose(manual, loss, atol=1e-5)


def test_tiny_speech_llm_loss_falls(corpus, tmp_path):
    result = train(TrainConfig(corpus=str(corpus.root), out=tmp_path / "t", steps=30, batch_size=4, lr=3e-3))
    losses = result["losses"]
    assert len(losses) == 30 and np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:3]), losses
    assert (tmp_path / "t" / "model.pt").is_file() and (tmp_path / "t" / "metrics.jsonl").read_text().count("\n") == 30


def test_training_with_interleaved_units_and_lora(tmp_path):
    c = Corpus.open(build(tmp_path / "c", {"train": [row(i) for i in range(8)]}), ["train"])
    units = S3Tokenizer(s3_onnx(tmp_path / "s3.onnx", vocab=64))
    # the samples the run trains on: reply text interleaved 1:2 with units shifted past the text vocabulary
    tok = build_tokenizer(corpus_texts(c))
    sample = next(iter(ExchangeDataset(c, SampleBuilder(AudioFeatures(80, 4, 4), ChatEncoder(tok, n_text=1, n_units=2), units),
                                       columns=COLUMNS)))  # fmt: skip
    target = [t for t in sample["labels"] if t != IGNORE]
    is_unit = [t >= len(tok) for t in target]
    assert is_unit[:6] == [False, True, True, False, True, True] and sum(is_unit) > 50
    assert all(len(tok) <= t < len(tok) + 64 for t, u in zip(target, is_unit, strict=True) if u)

    full = train(TrainConfig(corpus=str(c.root), out=tmp_path / "f", steps=2, batch_size=4, units=units))
    result = train(TrainConfig(corpus=str(c.root), out=tmp_path / "t", steps=6, batch_size=4, units=units,
                               spec_overrides={"lora": {"r": 4, "alpha": 8, "dropout": 0.0}}))  # fmt: skip
    assert result["num_units"] == 4096 and result["vocab"] > 4096
    assert np.isfinite(result["losses"]).all()
    assert result["lora"] and not full["lora"]
    # LoRA freezes the LM's own weights: far fewer trainable parameters, a few more in all (the adapters)
    assert result["trainable_params"] < full["trainable_params"] / 2 and result["total_params"] > full["total_params"]
