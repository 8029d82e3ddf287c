"""script: an LLM writes the dialogue text (and reasoning notes) inside a JSON schema fixed by the plan."""
