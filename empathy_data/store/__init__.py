"""Where a build's files live: the chunk store (a local directory or an fsspec URL, atomic publish),
the work layout (each chunk output's cache key and path), the output guards (this build or nothing,
no shrinking, partial writes cleaned) and the one-build-per-output lock.

May import: core/, records/, config/.
"""
