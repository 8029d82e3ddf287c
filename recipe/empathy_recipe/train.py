"""`empathy-recipe train`: a speech LLM on a corpus, tiny and random on CPU or real checkpoints on GPU."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from empathy_recipe.corpus import Corpus, read_group
from empathy_recipe.errors import RecipeError
from empathy_recipe.units.protocol import SpeechTokenizer

TINY = {"tiny": True, "n_mels": 80, "chunk_seconds": 4, "stack": 4, "interleave": "1:2"}


@dataclass
class TrainConfig:
    corpus: str
    model: str = "tiny"
    out: Path = Path("recipe-train")
    tokenizer: Path | None = None
    steps: int = 40
    batch_size: int = 4
    lr: float = 3e-3
    seed: int = 0
    split: str = "train"
    device: str = "cpu"
    threads: int = 1
    units: SpeechTokenizer | None = None  # programmatic; a spec's `units:` entry loads one from a path
    spec_overrides: dict[str, Any] = field(default_factory=dict)


def load_spec(model: str) -> dict[str, Any]:
    if model == "tiny":
        return dict(TINY)
    path = Path(model)
    if not path.is_file():
        raise RecipeError(f"model spec not found: {path} ('tiny' or a YAML file, see docs/recipes.md)")
    spec = yaml.safe_load(path.read_text()) or {}
    for key in ("encoder", "llm"):
        if not spec.get(key) or not Path(spec[key]).exists():
            raise RecipeError(f"model spec {path}: {key} checkpoint directory not found: {spec.get(key)}")
    return {"n_mels": 80, "chunk_seconds": 30, "stack": 4, "interleave": "1:2", **spec}


def corpus_texts(corpus: Corpus) -> list[str]:
    texts = []
    for group in corpus.row_groups():
        for row in read_group(group, ["history", "user_text", "assistant_text"]):
            texts += [row["user_text"] or "", row["assistant_text"] or ""] + [t["text"] for t in row["history"] or []]
    return texts


def train(cfg: TrainConfig) -> dict[str, Any]:
    try:
        import torch
        from torch.utils.data import DataLoader
    except ImportError:
        raise RecipeError("training needs torch and transformers: pip install 'empathy-recipe[train]'") from None
    from empathy_recipe.data import AudioFeatures, ChatEncoder, Collator, ExchangeDataset
    from empathy_recipe.data.sample import COLUMNS, SampleBuilder
    from empathy_recipe.data.template import AUDIO, AUDIO_BOS, AUDIO_EOS

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    spec = {**load_spec(cfg.model), **cfg.spec_overrides}
    corpus = Corpus.open(cfg.corpus, [cfg.split])
    units = cfg.units
    if units is None and spec.get("units"):
        from empathy_recipe.units.load import load_tokenizer

        u = spec["units"]
        units = load_tokenizer(u["kind"], u["path"], u.get("repo"), cfg.device)
    num_units = units.vocab_size if units is not None else 0

    if spec.get("tiny"):
        from empathy_recipe.tiny import build_model, build_tokenizer

        tokenizer = build_tokenizer(corpus_texts(corpus))
    else:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(cfg.tokenizer or spec["llm"]))
        tokenizer.add_special_tokens({"additional_special_tokens": [AUDIO_BOS, AUDIO, AUDIO_EOS]})
    audio_id = tokenizer.convert_tokens_to_ids(AUDIO)
    vocab = len(tokenizer) + num_units
    if spec.get("tiny"):
        model = build_model(vocab, audio_id, spec["n_mels"], spec["chunk_seconds"], spec["stack"], seed=cfg.seed)
    else:
        from empathy_recipe.model import from_pretrained

        dtype = getattr(torch, spec["dtype"]) if spec.get("dtype") else None
        model = from_pretrained(spec["encoder"], spec["llm"], audio_id, vocab, spec["stack"], dtype)
    if spec.get("lora"):
        from peft import LoraConfig, get_peft_model

        lora = spec["lora"]
        model.lm = get_peft_model(model.lm, LoraConfig(r=lora.get("r", 16), lora_alpha=lora.get("alpha", 32),
                                  lora_dropout=lora.get("dropout", 0.05), target_modules=lora.get("targets", ["q_proj", "k_proj", "v_proj", "o_proj"])))  # fmt: skip
    if spec.get("freeze_encoder", not spec.get("tiny")):
        model.encoder.requires_grad_(False)
    model.to(cfg.device)

    n_text, n_units = (int(x) for x in str(spec["interleave"]).split(":"))
    encoder = ChatEncoder(tokenizer, unit_offset=len(tokenizer), n_text=n_text, n_units=n_units)
    features = AudioFeatures(spec["n_mels"], spec["chunk_seconds"], spec["stack"])
    dataset = ExchangeDataset(corpus, SampleBuilder(features, encoder, units), seed=cfg.seed, columns=COLUMNS)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, collate_fn=Collator(tokenizer.pad_token_id))
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)

    cfg.out.mkdir(parents=True, exist_ok=True)
    losses: list[float] = []
    started = time.perf_counter()
    model.train()
    with open(cfg.out / "metrics.jsonl", "w") as log:
        epoch = 0
        while len(losses) < cfg.steps:
            dataset.set_epoch(epoch)
            seen = 0
            for batch in loader:
                batch = {k: v.to(cfg.device) for k, v in batch.items()}
                loss = model(**batch).loss
                optim.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optim.step()
                losses.append(float(loss.detach()))
                seen += 1
                log.write(json.dumps({"step": len(losses), "epoch": epoch, "loss": losses[-1]}) + "\n")
                if len(losses) >= cfg.steps:
                    break
            if seen == 0:
                raise RecipeError(f"no trainable rows in split {cfg.split!r} of {corpus.root}")
            epoch += 1
    save(model, tokenizer, cfg.out, spec)
    result = {"steps": len(losses), "first_loss": losses[0], "last_loss": losses[-1], "losses": losses,
              "seconds": round(time.perf_counter() - started, 2), "vocab": vocab, "num_units": num_units,
              "lora": bool(spec.get("lora")), "trainable_params": sum(p.numel() for p in params),
              "total_params": sum(p.numel() for p in model.parameters())}  # fmt: skip
    (cfg.out / "train.json").write_text(json.dumps({k: v for k, v in result.items() if k != "losses"}, indent=2) + "\n")
    return result


def save(model, tokenizer, out: Path, spec: dict[str, Any]) -> None:
    import torch

    tokenizer.save_pretrained(str(out / "tokenizer"))
    torch.save(model.projector.state_dict(), out / "projector.pt")
    if spec.get("tiny"):
        torch.save(model.state_dict(), out / "model.pt")
    else:
        model.lm.save_pretrained(str(out / "lm"))  # the LoRA adapter only, when LoRA is on
