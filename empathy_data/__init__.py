"""empathy-data: manufactures training corpora for empathetic speech language models."""

__version__ = "0.1.0"
