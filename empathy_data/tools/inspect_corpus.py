"""`empathy-data inspect`: a few exchanges of a finished build as text, and their audio on demand."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from rich.markup import escape
from rich.table import Table

from empathy_data.core.audio import decode_bytes, resample
from empathy_data.tools.report.load import (
    AUDIO,
    LABELS,
    OPTIONAL,
    TEXTS,
    VERDICT,
    Location,
    ReportError,
    find_rows,
    read_manifest,
    read_rows,
    shard_paths,
)

COLUMNS = (*LABELS, *TEXTS, "quality", *OPTIONAL)
# Players tried in this order; the first one on PATH plays the pair's WAV.
PLAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ffplay", ("-nodisp", "-autoexit", "-loglevel", "error")),
    ("aplay", ("-q",)),
    ("paplay", ()),
)
GAP_S = 0.4  # silence between the user turn and the reply


def select_exchanges(
    out: Path, emotion: str | None = None, split: str | None = None, n: int = 5, rejects: bool = False
) -> list[tuple[Location, dict]]:
    """The first `n` exchanges (of data/, or of rejects/) with that user emotion and split, without audio."""
    manifest = read_manifest(out)
    if rejects:
        paths, columns = shard_paths(out, manifest, "rejects"), (*COLUMNS, *VERDICT)
    else:
        splits = manifest.shards.data
        if split is not None and split not in splits:
            raise ReportError(f"--split {split}: not a split of {out} (splits: {', '.join(splits) or 'none'})")
        paths, columns = shard_paths(out, manifest, "data", split), COLUMNS

    def keep(row: dict) -> bool:
        return emotion in (None, row["user_emotion"]) and split in (None, row["split"])

    return find_rows(paths, columns, keep, n)


def _score(value: float | str | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if isinstance(value, int | float) else str(value)


def exchange_table(row: dict) -> Table:
    """One exchange as a two-column table; every value is escaped (corpus text is not Rich markup)."""
    title = f"{row['dialogue_id']} · exchange {row['exchange_index']}"
    table = Table(title=escape(title), show_header=False, title_justify="left", expand=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    history = row.get("history") or []
    fields: list[tuple[str, object]] = []
    if "verdict" in row:
        fields += [("verdict", f"{row['verdict']} ({row.get('stage')})"), ("reasons", "; ".join(row["reasons"] or []))]
    fields += [
        ("split", row["split"]),
        ("language", row["language"]),
        ("scenario", row["scenario"]),
        ("user", f"{row['user_speaker_id']} ({row['user_gender']}, {row['user_age_group']})"),
        ("user emotion", row["user_emotion"]),
        ("assistant style", row["assistant_style"]),
        ("history", f"{len(history)} turn(s)"),
        ("user text", row.get("user_text") or "-"),
        ("assistant text", row.get("assistant_text") or "-"),
        ("reasoning", row.get("reasoning") or "-"),
        ("scores", ", ".join(f"{k} {_score(v)}" for k, v in (row.get("quality") or {}).items()) or "-"),
    ]
    if "history_clean" in row:
        fields.append(("history clean", row["history_clean"]))
    for name, value in fields:
        table.add_row(escape(name), escape(str(value)))
    return table


def pair_audio(row: dict) -> tuple[np.ndarray, int] | None:
    """User turn, a short gap, then the reply, at the user turn's sample rate; None without audio."""
    values = [row.get(col) for col in AUDIO]
    if not all(v and v.get("bytes") for v in values):
        return None
    (user, rate), (reply, reply_rate) = (decode_bytes(v["bytes"]) for v in values)
    gap = np.zeros(int(GAP_S * rate), dtype=np.float32)
    return np.concatenate([user, gap, resample(reply, reply_rate, rate)]), rate


def write_pair_wav(row: dict) -> Path | None:
    pair = pair_audio(row)
    if pair is None:
        return None
    fd, name = tempfile.mkstemp(prefix=f"empathy-inspect-{row['dialogue_id']}-{row['exchange_index']}-", suffix=".wav")
    with open(fd, "wb") as f:
        sf.write(f, pair[0], pair[1], format="WAV", subtype="PCM_16")
    return Path(name)


def player_command() -> list[str] | None:
    for name, args in PLAYERS:
        if found := shutil.which(name):
            return [found, *args]
    return None


def play_exchange(location: Location) -> str:
    """Play one exchange's audio (user then assistant); say what happened in one line."""
    row = read_rows([location], ("dialogue_id", "exchange_index", *AUDIO))[0]
    wav = write_pair_wav(row)
    if wav is None:
        return "no audio for this exchange (rejects keep audio only with export.rejects_audio)"
    command = player_command()
    if command is None:
        return f"audio: {wav} (no player found: {', '.join(name for name, _ in PLAYERS)})"
    if subprocess.run([*command, str(wav)], check=False).returncode != 0:
        return f"audio: {wav} ({Path(command[0]).name} could not play it)"
    wav.unlink()
    return f"played with {Path(command[0]).name}"
