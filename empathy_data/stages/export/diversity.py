"""Corpus-level text diversity (distinct-n, common openings) and near-duplicate scripts (MinHash LSH).

Both objects are fed while the exporter streams the corpus in plan order and answer deterministically:
the same texts in the same order give the same answers in any process (no use of Python's salted
`hash()`, a fixed MinHash seed and permutation scheme, candidates ranked by index order, not set order).

Tokens, shared by both: the text is NFKC-normalised and lowercased, punctuation is dropped, every CJK
ideograph (and kana) is one token, and every other run of letters and digits (with inner apostrophes:
"don't") is one word. So English gives words and Mandarin gives characters, a Latin word inside
Mandarin stays one token, and a mislabelled text is still tokenised by its script.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import unicodedata
from collections import Counter

import numpy as np

_UNSPACED = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"  # kana and CJK ideographs: one token per character
_TOKEN = re.compile(rf"[{_UNSPACED}]|[^\W_{_UNSPACED}]+(?:'[^\W_{_UNSPACED}]+)*")
_UNSPACED_CHAR = re.compile(rf"[{_UNSPACED}]")
_OTHER_LETTER = re.compile(rf"[^\W\d_{_UNSPACED}]")
_UNSPACED_LANGUAGES = ("zh", "cmn", "yue", "ja")
OPENING_TOKENS = {"spaced": 4, "unspaced": 6}  # first 4 words (en) / first 6 characters (zh)

# MinHash LSH bands are chosen by datasketch for these (false positive, false negative) weights. Every LSH
# candidate is then verified against the stored signature, so the bands lean towards recall: at
# threshold 0.8 and 64 permutations this gives 9 bands of 7 rows (a pair at Jaccard 0.8 becomes a
# candidate with p = 0.88, at 0.9 with p = 0.997, at 0.3 with p = 0.002).
_LSH_WEIGHTS = (0.1, 0.9)


def tokens(text: str) -> list[str]:
    """Lowercased tokens without punctuation: words for spaced scripts, characters for CJK."""
    text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'")
    return _TOKEN.findall(text)


def is_unspaced(text: str, language: str) -> bool:
    """Mandarin-like: the language code says so (zh, zh-CN, cmn, ...) or most letters are CJK."""
    if _primary(language) in _UNSPACED_LANGUAGES:
        return True
    return len(_UNSPACED_CHAR.findall(text)) > len(_OTHER_LETTER.findall(text))


def opening_text(text: str, language: str) -> str:
    """Normalised start of a turn: its first 4 words (en) or first 6 characters (zh)."""
    unspaced = is_unspaced(text, language)
    head = tokens(text)[: OPENING_TOKENS["unspaced" if unspaced else "spaced"]]
    return ("" if unspaced else " ").join(head)


def shingles(toks: list[str], n: int) -> set[str]:
    """Token n-grams (word n-grams for en, character n-grams for zh); a text shorter than n gives its tokens."""
    if len(toks) < n:
        return set(toks)
    return {" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1)}


def _primary(language: str) -> str:
    return language.lower().replace("_", "-").split("-")[0]


class NearDuplicates:
    """MinHash/LSH over whole dialogue scripts, first one kept.

    `check` shingles a script (token n-grams, see `shingles`), builds its MinHash and looks up the earlier
    kept scripts that share one of its LSH bands. Each candidate is verified with the Jaccard similarity
    estimated from the two signatures (the share of equal hash values); at or above `threshold`, this
    script is a near duplicate of the earliest such kept script and is not indexed. Otherwise it is
    indexed and kept.

    Hash values are 32-bit (datasketch's "affine32" scheme, named explicitly so that a change of default,
    as in datasketch 2.0, cannot silently change which dialogues are dropped); datasketch also picks the
    bands (b bands of r rows).

    The index (each kept signature and its b band keys) lives in a private temporary SQLite database, not
    in Python objects: it grows with the corpus (about 1.1 KB per kept dialogue on disk, in the temporary directory), while the
    process holds only SQLite's page cache (2 MB). In datasketch's in-memory index the same dialogue cost
    3.5 KB of RAM (tracemalloc, 20,000 dialogues of 60 words), 3.4 GB for a million kept dialogues, all
    in the driver that runs export's first pass. A near duplicate costs nothing after `check` returns.
    """

    def __init__(self, threshold: float = 0.8, num_perm: int = 64, shingle: int = 3, seed: int = 1) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if num_perm < 2:
            raise ValueError(f"num_perm must be at least 2, got {num_perm}")
        if shingle < 1:
            raise ValueError(f"shingle must be at least 1, got {shingle}")
        self.threshold = threshold
        self.num_perm = num_perm
        self.shingle = shingle
        self.seed = seed
        self.checked = 0
        self.found = 0
        self.kept = 0
        # Imported here: datasketch loads SciPy's integrate (~0.9 s), which every process that imports the
        # build flow would pay.
        from datasketch import MinHash, MinHashLSH

        self._minhash = MinHash(num_perm=num_perm, seed=seed, scheme="affine32")
        self._bands = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=_LSH_WEIGHTS).hashranges
        # "": a temporary database on disk, removed when the connection closes (or the process ends)
        self._db = sqlite3.connect("", isolation_level=None)
        self._db.executescript(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
            "CREATE TABLE kept (row INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, signature BLOB NOT NULL);"
            "CREATE TABLE bands (key BLOB NOT NULL, row INTEGER NOT NULL);"
            "CREATE INDEX band_keys ON bands (key);"
        )
        marks = ",".join("?" * len(self._bands))
        self._candidates = (
            f"SELECT row, id, signature FROM kept WHERE row IN (SELECT row FROM bands WHERE key IN ({marks})) "
            "ORDER BY row"  # index order: the earliest kept script wins
        )

    def check(self, dialogue_id: str, text: str) -> str | None:
        """The dialogue_id of an earlier near-duplicate (and this one is not indexed), else index it and
        return None. Join a dialogue's turns with newlines to pass its whole script. A text without a single
        token cannot be compared: it returns None and is not indexed."""
        if self._db.execute("SELECT 1 FROM kept WHERE id = ?", (dialogue_id,)).fetchone():
            raise ValueError(f"{dialogue_id}: already checked and kept")
        self.checked += 1
        grams = shingles(tokens(text), self.shingle)
        if not grams:
            return None
        self._minhash.clear()
        self._minhash.update_batch([g.encode("utf-8") for g in grams])
        signature = self._minhash.hashvalues.astype(np.uint32)
        keys = [band.to_bytes(2, "little") + signature[start:end].tobytes()
                for band, (start, end) in enumerate(self._bands)]  # fmt: skip
        candidates = self._db.execute(self._candidates, keys).fetchall()
        if candidates:
            signatures = np.frombuffer(b"".join(blob for *_, blob in candidates), dtype=np.uint32)
            similarity = (signatures.reshape(len(candidates), -1) == signature).mean(axis=1)
            close = np.flatnonzero(similarity >= self.threshold)
            if close.size:
                self.found += 1
                return candidates[close[0]][1]
        row = self.kept
        self._db.execute("INSERT INTO kept VALUES (?, ?, ?)", (row, dialogue_id, signature.tobytes()))
        self._db.executemany("INSERT INTO bands VALUES (?, ?)", [(key, row) for key in keys])
        self.kept += 1
        return None

    def summary(self) -> dict:
        rate = self.found / self.checked if self.checked else 0.0
        return {"near_duplicate_rate": rate, "near_duplicates": self.found, "dialogues": self.checked}

    def close(self) -> None:
        """Remove the index's temporary file; the counts and summary stay."""
        self._db.close()


class HashedSet:
    """Count of distinct 64-bit values, kept in a sorted uint64 array (8 bytes per distinct value). New values
    wait in a buffer of at most max(`min_flush`, half the distinct count) and are merged in by sorting."""

    def __init__(self, min_flush: int = 1 << 16) -> None:
        self._seen = np.empty(0, dtype=np.uint64)
        self._pending: list[np.ndarray] = []
        self._pending_size = 0
        self._min_flush = min_flush

    def update(self, values: np.ndarray) -> None:
        self._pending.append(values.astype(np.uint64, copy=False))
        self._pending_size += len(values)
        if self._pending_size >= max(self._min_flush, len(self._seen) // 2):
            self._flush()

    def __len__(self) -> int:
        self._flush()
        return len(self._seen)

    def _flush(self) -> None:
        if self._pending:
            self._seen = np.unique(np.concatenate([self._seen, *self._pending]))
            self._pending, self._pending_size = [], 0


# Bigram hash from its tokens' hashes: h(a) * K + h(b) mod 2^64 with K odd, so two different bigrams collide
# with probability about 2^-62 (2^-64 unless one is the other reversed), no worse than hashing their text.
_BIGRAM_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


class _NgramCounts:
    """Total and distinct n-grams of one language, for n = 1 and 2, distinct ones kept as 64-bit hashes."""

    def __init__(self) -> None:
        self.total = [0, 0]
        self.distinct = [HashedSet(), HashedSet()]

    def add(self, toks: list[str]) -> None:
        if not toks:
            return
        unigrams = np.fromiter((_hash64(t) for t in toks), dtype=np.uint64, count=len(toks))
        bigrams = unigrams[:-1] * _BIGRAM_MULTIPLIER + unigrams[1:]  # uint64 arrays wrap around silently
        for n, grams in ((1, unigrams), (2, bigrams)):
            if len(grams):
                self.total[n - 1] += len(grams)
                self.distinct[n - 1].update(grams)


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


class DiversityStats:
    """distinct-1/2 over every added turn text and the most common dialogue openings.

    distinct-n = distinct n-grams / all n-grams (Li et al. 2016, normalised by n-gram count), with n-grams
    of tokens (words in en, characters in zh) inside one turn. It is reported per language (primary subtag:
    "zh-CN" counts as "zh") and pooled over languages; en words and zh characters are different units, so
    compare a language's figure across corpora rather than the pooled one across languages.

    Memory: n-grams are kept as 64-bit hashes (BLAKE2b of each token; a bigram combines its two) in sorted
    numpy arrays, about 8 bytes per distinct n-gram, up to about 4 times that while a buffer is merged in,
    never as strings. Two different n-grams share a hash with
    probability about k^2 / 2^65 for k distinct n-grams (< 0.03 expected collisions at a billion), which
    would undercount distinct-n by that many. Openings are counted exactly, one short string per distinct
    opening (about 100 bytes each).
    """

    def __init__(self, top: int = 5) -> None:
        self.top = top
        self._languages: dict[str, _NgramCounts] = {}
        self._openings: Counter[str] = Counter()

    def add(self, text: str, language: str, opening: bool = False) -> None:
        """One accepted turn text; `opening=True` for the user's first turn of a dialogue."""
        counts = self._languages.setdefault(_primary(language), _NgramCounts())
        counts.add(tokens(text))
        if opening and (head := opening_text(text, language)):
            self._openings[head] += 1

    def summary(self, duplicates: NearDuplicates | None = None) -> dict:
        """distinct_1, distinct_2 (pooled), by_language, top_openings ([text, count], count >= 2, most common
        first, ties by text) and, given the corpus's NearDuplicates, near_duplicate_rate, near_duplicates and
        dialogues."""
        by_language = {
            language: {
                "distinct_1": _ratio(len(counts.distinct[0]), counts.total[0]),
                "distinct_2": _ratio(len(counts.distinct[1]), counts.total[1]),
                "tokens": counts.total[0],
            }
            for language, counts in sorted(self._languages.items())
        }
        pooled = {
            f"distinct_{n}": _ratio(
                sum(len(c.distinct[n - 1]) for c in self._languages.values()),
                sum(c.total[n - 1] for c in self._languages.values()),
            )
            for n in (1, 2)
        }
        ranked = sorted((item for item in self._openings.items() if item[1] >= 2), key=lambda item: (-item[1], item[0]))
        result = {
            **pooled,
            "by_language": by_language,
            "top_openings": [[text, count] for text, count in ranked[: self.top]],
        }
        if duplicates is not None:
            result.update(duplicates.summary())
        return result


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


class SemanticDuplicates:
    """Sentence-embedding near duplicates (paraphrases that MinHash cannot see), first one kept, within
    each language, plus each language's semantic diversity. Vectors are the unit-length embeddings the
    script stage kept (float16 in Script.quality); each check is one matrix product against the kept
    vectors of its language (float16, 768 B per kept dialogue at 384 dimensions), so the whole pass is
    O(n^2): about a minute per 100k dialogues."""

    def __init__(self, threshold: float = 0.97, sample: int = 2000) -> None:
        self.threshold = threshold
        self.sample = sample
        self.checked = 0
        self.found = 0
        self._ids: dict[str, list[str]] = {}
        self._vectors: dict[str, np.ndarray] = {}

    def check(self, dialogue_id: str, vector: np.ndarray, language: str = "") -> tuple[str, float] | None:
        """(earlier dialogue id, cosine) when a kept script of the same language says nearly the same
        (this one is not kept), else keep this one and return None."""
        self.checked += 1
        ids = self._ids.setdefault(language, [])
        kept = self._vectors.get(language)
        n = len(ids)
        if n:
            similarity = kept[:n].astype(np.float32) @ vector.astype(np.float32)
            best = int(np.argmax(similarity))
            if similarity[best] >= self.threshold:
                self.found += 1
                return ids[best], round(float(similarity[best]), 4)
        if kept is None or n == len(kept):
            grown = np.empty((max(1024, 2 * n), vector.shape[0]), dtype=np.float16)
            if n:
                grown[:n] = kept[:n]
            kept = self._vectors[language] = grown
        kept[n] = vector
        ids.append(dialogue_id)
        return None

    def summary(self) -> dict:
        """semantic_duplicates, semantic_checked, and semantic_diversity per language: 1 - the mean cosine
        similarity between two different kept scripts, over the first `sample` kept (0 = all the same)."""
        diversity = {}
        for language, ids in sorted(self._ids.items()):
            kept = self._vectors[language][: min(len(ids), self.sample)].astype(np.float32)
            if len(kept) >= 2:
                gram = kept @ kept.T
                mean = (gram.sum() - np.trace(gram)) / (len(kept) * (len(kept) - 1))
                diversity[language or "all"] = round(1.0 - float(mean), 4)
        return {"semantic_duplicates": self.found, "semantic_checked": self.checked, "semantic_diversity": diversity}
