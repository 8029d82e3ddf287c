"""Real user queries for the plan: an ingested-corpus directory (`empathy-data ingest`) read and checked, and
which recording the k-th real dialogue of a (language, emotion) cell takes."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from empathy_data.core.errors import ConfigError
from empathy_data.core.hashing import digest, file_sha256
from empathy_data.records.schema import RealQuery, Speaker


@dataclass(frozen=True)
class RealItem:
    query: RealQuery
    emotion: str
    speaker: Speaker


@dataclass(frozen=True)
class RealCorpus:
    """One or more ingested directories, their recordings together."""

    roots: dict[str, Path]  # corpus name -> its directory
    summaries: tuple[dict[str, Any], ...]  # each corpus's corpus.json: name, source, licence, counts
    items: tuple[RealItem, ...]
    content_hash: str  # of every queries.jsonl: what the plan depends on
    _cells: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def cells(self) -> dict[tuple[str, str], tuple[RealItem, ...]]:
        """(language, emotion) -> its recordings, in an order fixed by the corpora alone."""
        if not self._cells:
            for item in sorted(self.items, key=lambda i: (i.query.corpus, i.query.id)):
                self._cells.setdefault((item.speaker.language, item.emotion), []).append(item)
            for key, items in self._cells.items():
                random.Random(f"{self.content_hash}:{key}").shuffle(items)
                self._cells[key] = tuple(items)
        return self._cells

    def take(self, language: str, emotion: str, rank: int) -> RealItem:
        """The recording of the rank-th real dialogue of a cell: every recording once before any twice."""
        items = self.cells()[(language, emotion)]
        return items[rank % len(items)]

    def audio_path(self, query: RealQuery) -> Path:
        return self.roots[query.corpus] / query.audio

    def by_emotion(self) -> dict[str, int]:
        return dict(sorted(Counter(i.emotion for i in self.items).items()))


def load_real_corpora(paths: list[Path]) -> RealCorpus:
    """Every ingested directory, read and checked; two corpora of one name are a ConfigError."""
    loaded = [load_real_corpus(path) for path in paths]
    roots: dict[str, Path] = {}
    for corpus in loaded:
        (name, root), = corpus.roots.items()
        if name in roots:
            raise ConfigError(f"ingest.path: {root}", f"a second corpus named {name!r} (the first: {roots[name]}); "
                              "ingest it under another --name")  # fmt: skip
        roots[name] = root
    if len(loaded) == 1:
        return loaded[0]
    return RealCorpus(
        roots, tuple(s for c in loaded for s in c.summaries), tuple(i for c in loaded for i in c.items),
        digest([c.content_hash for c in loaded]),
    )  # fmt: skip


def load_real_corpus(path: Path) -> RealCorpus:
    """The ingested directory, every line checked and every clip present; a problem is a ConfigError."""
    queries_file, summary_file = path / "queries.jsonl", path / "corpus.json"
    for needed in (queries_file, summary_file):
        if not needed.is_file():
            raise ConfigError(f"ingest.path: {path}", f"missing {needed.name} (write it with `empathy-data ingest`)")
    try:
        summary = json.loads(summary_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(str(summary_file), f"cannot read ({exc.__class__.__name__})") from None
    name = str(summary.get("name") or path.name)
    items = []
    for line_no, line in enumerate(queries_file.read_text(encoding="utf-8").splitlines(), start=1):
        where = f"{queries_file}:{line_no}"
        try:
            row = json.loads(line)
            query = RealQuery(id=row["id"], corpus=name, audio=row["audio"], transcript=row["transcript"],
                              sha256=row["sha256"])  # fmt: skip
            speaker = Speaker(
                id=f"{name}:{row['speaker']}", gender=row["gender"], age_group=row["age_group"],
                language=row["language"], source=name, licence=str(summary.get("licence", "unknown")),
            )  # fmt: skip
        except (json.JSONDecodeError, KeyError, TypeError, ValidationError) as exc:
            raise ConfigError(where, f"not an ingested query ({exc.__class__.__name__}: {str(exc).splitlines()[0]})") from None
        if not (path / query.audio).is_file():
            raise ConfigError(where, f"missing clip {path / query.audio}")
        items.append(RealItem(query, str(row["emotion"]), speaker))
    if not items:
        raise ConfigError(str(queries_file), "holds no queries")
    return RealCorpus({name: path}, (summary,), tuple(items), file_sha256(queries_file))
