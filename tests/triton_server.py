"""A real Triton Inference Server (PyTriton's bundled build) serving a test model with the interface of
CosyVoice2's Triton runtime (upstream runtime/triton_trtllm/model_repo/cosyvoice2/config.pbtxt):
inputs reference_wav FP32 [-1], reference_wav_len INT32 [1], reference_text and target_text BYTES [1];
output waveform FP32 [-1]; dynamic batching. The model is a test double, not a TTS: its waveform spells
out what it received, so a test can check every input arrived intact.

Run from its own environment (.venv-triton, see .ci/run):
    python tests/triton_server.py PORT [--version N] [--fail-text TEXT=ERROR ...]
"""

from __future__ import annotations

import argparse
import os
import sysconfig

import numpy as np


def spelled(reference: np.ndarray, reference_text: bytes, target_text: bytes) -> np.ndarray:
    """What the test model answers: every 100th reference sample, then both texts' bytes / 255."""
    return np.concatenate(
        [
            reference[::100],
            np.frombuffer(reference_text, dtype=np.uint8) / 255.0,
            np.frombuffer(target_text, dtype=np.uint8) / 255.0,
        ]
    ).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--version", type=int, default=1)
    parser.add_argument("--fail-text", action="append", default=[], help="TEXT=ERROR: raise ERROR for that target text")
    args = parser.parse_args()
    failures = dict(item.split("=", 1) for item in args.fail_text)
    # Triton's Python backend stub loads libpython: this interpreter's, not another one on the loader path.
    os.environ["LD_LIBRARY_PATH"] = ":".join(filter(None, [sysconfig.get_config_var("LIBDIR"), os.environ.get("LD_LIBRARY_PATH")]))

    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.proxy.types import Request
    from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig

    def infer(requests: list[Request]) -> list[dict[str, np.ndarray]]:
        answers = []
        for request in requests:
            target = bytes(request["target_text"][0][0])
            if target.decode() in failures:
                raise (ValueError if "phonemes" in failures[target.decode()] else RuntimeError)(failures[target.decode()])
            length = int(request["reference_wav_len"][0][0])
            reference = request["reference_wav"][0][:length]
            answers.append({"waveform": spelled(reference, bytes(request["reference_text"][0][0]), target)[None, :]})
        return answers

    config = TritonConfig(http_port=args.port, grpc_port=args.port + 1, metrics_port=args.port + 2, log_verbose=0)
    # Statistics open (tests count batches from them); the rest stays behind PyTriton's token.
    security = TritonSecurityConfig(restricted_endpoints=["shared-memory", "model-repository", "trace", "logging"])
    with Triton(config=config, security_config=security) as triton:
        triton.bind(
            model_name="cosyvoice2",
            model_version=args.version,
            infer_func=infer,
            inputs=[
                Tensor(name="reference_wav", dtype=np.float32, shape=(-1,)),
                Tensor(name="reference_wav_len", dtype=np.int32, shape=(1,)),
                Tensor(name="reference_text", dtype=bytes, shape=(1,)),
                Tensor(name="target_text", dtype=bytes, shape=(1,)),
            ],
            outputs=[Tensor(name="waveform", dtype=np.float32, shape=(-1,))],
            config=ModelConfig(max_batch_size=16, batcher=DynamicBatcher(max_queue_delay_microseconds=50_000)),
            strict=False,
        )
        triton.serve()


if __name__ == "__main__":
    main()
