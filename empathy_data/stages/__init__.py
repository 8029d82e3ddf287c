"""The four stages that turn a plan into a corpus, one folder each: `script` (an LLM writes each
dialogue), `synthesize` (TTS renders it), `filter` (judges score it), `export` (Parquet shards, card,
manifest). Each stage's backends live beside it.

May import: core/, records/, config/, planning/, store/, weights/, serving/ (clients only); never runtime/,
flows/ or tools/.
"""
