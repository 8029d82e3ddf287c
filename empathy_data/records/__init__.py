"""The records that pass between stages: plan specs and scripts (`schema`), and the typed rows of a
chunk output with their JSONL form (`chunk_records`).

May import: core/.
"""
