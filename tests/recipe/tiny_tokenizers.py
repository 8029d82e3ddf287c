"""Tiny speech tokenizers built by the tests: an ONNX graph with the S3 tokenizer's signature, and a stand-in
for GLM-4-Voice's `speech_tokenizer` package (same class names, constructor and forward signature)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np


def s3_onnx(path: Path, vocab: int = 4096, seed: int = 0) -> Path:
    """feats (1, 128, T) float32 + feats_length (1,) int32 -> indices (1, ceil(T/2)) int64: 50 Hz ids in 0..vocab-1."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.standard_normal((128, vocab)).astype(np.float32), "W")
    consts = [
        numpy_helper.from_array(np.array([0], dtype=np.int64), "start"),
        numpy_helper.from_array(np.array([2**62], dtype=np.int64), "end"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "axis"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "step"),
    ]
    nodes = [
        helper.make_node("Slice", ["feats", "start", "end", "axis", "step"], ["strided"]),
        helper.make_node("Transpose", ["strided"], ["frames"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["frames", "W"], ["logits"]),
        helper.make_node("ArgMax", ["logits"], ["indices"], axis=2, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "tiny_s3",
        [helper.make_tensor_value_info("feats", TensorProto.FLOAT, [1, 128, "T"]),
         helper.make_tensor_value_info("feats_length", TensorProto.INT32, [1])],
        [helper.make_tensor_value_info("indices", TensorProto.INT64, [1, "N"])],
        initializer=[weight, *consts],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


GLM_CONFIG = '''
from transformers import PretrainedConfig


class WhisperVQConfig(PretrainedConfig):
    model_type = "whisper"

    def __init__(self, num_mel_bins=128, d_model=16, encoder_layers=3, pooling_kernel_size=4, quantize_position=2,
                 quantize_vocab_size=16384, quantize_encoder_only=False, **kwargs):
        self.num_mel_bins = num_mel_bins
        self.d_model = d_model
        self.encoder_layers = encoder_layers
        self.pooling_kernel_size = pooling_kernel_size
        self.quantize_position = quantize_position
        self.quantize_vocab_size = quantize_vocab_size
        self.quantize_encoder_only = quantize_encoder_only
        super().__init__(**kwargs)
'''

GLM_MODELING = '''
from dataclasses import dataclass

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput


@dataclass
class QuantizedBaseModelOutput(BaseModelOutput):
    quantized_token_ids: torch.LongTensor = None


class WhisperVQEncoder(nn.Module):
    """Same constructor / forward signature and strides as GLM-4-Voice's: conv1 stride 1, conv2 stride 2,
    pooling, then nearest-codebook ids for the first quantize_position layers."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        d = config.d_model
        self.conv1 = nn.Conv1d(config.num_mel_bins, d, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(d, d, kernel_size=3, stride=2, padding=1)
        self.layers = nn.ModuleList([nn.Linear(d, d) for _ in range(config.quantize_position)])
        self.pooling_layer = nn.AvgPool1d(kernel_size=config.pooling_kernel_size)
        self.codebook = nn.Embedding(config.quantize_vocab_size, d)

    def forward(self, input_features, attention_mask=None, head_mask=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, quantized_token_ids=None):
        h = nn.functional.gelu(self.conv2(nn.functional.gelu(self.conv1(input_features))))
        h = self.pooling_layer(h).transpose(1, 2)
        for layer in self.layers:
            h = h + torch.tanh(layer(h))
        ids = torch.cdist(h, self.codebook.weight[None]).argmin(-1)
        return QuantizedBaseModelOutput(last_hidden_state=h, quantized_token_ids=ids)
'''


def glm_standin(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """Returns (repo dir with speech_tokenizer/, model dir with config.json + model.safetensors + preprocessor)."""
    import importlib
    import sys

    import torch
    from safetensors.torch import save_file
    from transformers import WhisperFeatureExtractor

    repo, model_dir = root / "glm-repo", root / "glm-4-voice-tokenizer"
    (repo / "speech_tokenizer").mkdir(parents=True)
    (repo / "speech_tokenizer" / "__init__.py").write_text("")
    (repo / "speech_tokenizer" / "configuration_whisper.py").write_text(textwrap.dedent(GLM_CONFIG))
    (repo / "speech_tokenizer" / "modeling_whisper.py").write_text(textwrap.dedent(GLM_MODELING))
    model_dir.mkdir()
    sys.path.insert(0, str(repo))
    try:
        for name in [m for m in sys.modules if m == "speech_tokenizer" or m.startswith("speech_tokenizer.")]:
            del sys.modules[name]
        cfg_mod = importlib.import_module("speech_tokenizer.configuration_whisper")
        mdl_mod = importlib.import_module("speech_tokenizer.modeling_whisper")
        config = cfg_mod.WhisperVQConfig()
        torch.manual_seed(seed)
        model = mdl_mod.WhisperVQEncoder(config)
        state = {f"model.encoder.{k}": v.contiguous() for k, v in model.state_dict().items()}
        # what the real checkpoint also holds and the loader must leave out
        state["model.encoder.layer_norm.weight"] = torch.ones(config.d_model)
        state["model.encoder.layers.5.weight"] = torch.zeros(config.d_model, config.d_model)
        state["model.decoder.embed_tokens.weight"] = torch.zeros(4, config.d_model)
        save_file(state, str(model_dir / "model.safetensors"))
        config.save_pretrained(str(model_dir))
        WhisperFeatureExtractor(feature_size=128).save_pretrained(str(model_dir))
    finally:
        sys.path.remove(str(repo))
        for name in [m for m in sys.modules if m == "speech_tokenizer" or m.startswith("speech_tokenizer.")]:
            del sys.modules[name]
    json.loads((model_dir / "config.json").read_text())
    return repo, model_dir
