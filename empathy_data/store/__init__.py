"""Where a build's files live: the chunk store (a local directory or an fsspec URL, atomic publish)
and the one-build-per-output lock.

May import: core/, records/, config/.
"""
