"""empathy-recipe: export empathy-data corpora to public speech-LLM recipes and train on them."""

__version__ = "0.1.0"
