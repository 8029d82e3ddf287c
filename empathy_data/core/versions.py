"""Versions of the packages that shape a corpus, for the manifest."""

from importlib.metadata import PackageNotFoundError, version

PACKAGES = (
    "empathy-data", "pydantic", "prefect", "openai", "llama-cpp-python", "faster-whisper", "ctranslate2",
    "espeakng-loader", "librosa", "soundfile", "numpy", "pyarrow", "datasets", "jiwer",
)  # fmt: skip


def package_versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
