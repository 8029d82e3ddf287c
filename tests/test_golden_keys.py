"""Golden stage keys: what a finished build's chunk store is found by. A change to these values makes
every existing build start over; it must be on purpose (a documented format change), never a side effect
of moving code. Library versions are pinned here (they are in the keys on purpose, and move with installs)."""

from __future__ import annotations

import pytest
import yaml

from empathy_data.backends import builtin, registry
from empathy_data.runtime import build
from empathy_data.stages.script import embeddings
from empathy_data.store.work_layout import STAGES
from tests.conftest import REPO, tiny_config

# Moved on purpose, each time with its reason (every existing build starts over after such a change):
# - allocation version 5: scenarios carry the age groups they fit (prompts/scenarios/*.yaml `ages:`), the
#   plan draws a scenario among those that fit the user, and the prompt says it is the user's own situation.
# - script.keep_stalled_exchanges (default true): in the last round, a dialogue written exchange by exchange
#   that stalls keeps the exchanges it had passed, so the script stage's output changed for the same settings.
# - filter.emotion calibration (min_recall, min_precision, probe size; on by default): the emotion check
#   gates only the emotions its measurement on the build's TTS trusts, so the filter's verdicts changed.
# - smoke-mixed only: its topic check is multilingual-e5 (configs/smoke-mixed.yaml), a config change.
# - "tiny" only: the test config asks for 2 script attempts a round (tests/conftest.py), not a format change.
GOLDEN = {
    "smoke-mixed.yaml": {
        "script": [
            ["e5be7ea1f12bbcdf", "5b423546ecd91ba7", "a600c15a519ad37f", "7a82adb09c53f7f6"],
            ["f1fbf3268518bf62", "156d47641501bd8d", "ea68a3bd338e256a", "c374392f99562a84"],
            ["e93a976f9210e0ff", "71e7a5f5a0375198", "0ff4b6cfa4e10c1c", "639ece669980b93b"],
            ["f694b0014b7db7c3", "3c945b186ccb6d02", "cb8723e52e2bb7a9", "907437509db1fe7a"],
        ],
        "synthesize": [
            ["e3d5c9547108cc3f", "c161876064d7e8aa", "5402f80de7ed5743", "024cc8d9d6088d85"],
            ["f6dec1efbb84b39c", "9b176a5646e6dba7", "783bb594570b0107", "b1925626a381cc13"],
            ["84aef5b334cc5f4c", "0028c035dc604482", "54ad369e31df9d0c", "ee95114815319455"],
            ["cfcd349037865d6b", "6437cedb0fb3ebb2", "fe9b00d06e5656fd", "7f2361f59bed8fdc"],
        ],
        "filter": [
            ["05f30d4c75216941", "57fa879b4be06244", "4a74af7a2f99badf", "372603bf0a8e205a"],
            ["619497db187aa633", "8a95f3b30ebb7b0d", "100a3b0b882caf41", "ccc16d8a480f3320"],
            ["2b7d9d4a39be2cc1", "ca736172596c2454", "db0c2c74d8b09721", "edbe4b4199a70e9f"],
            ["cdd6df09854c3b66", "906f5610376f2b2b", "ac6ef022a50e8ac1", "f3e4ecf439b0c65e"],
        ],
    },
    "smoke.yaml": {
        "script": [["70bf7181b3f49b66", "ce5e70a5cb3c84cf"], ["8bb1877dd0021c22", "d4511649dcf982cc"]],
        "synthesize": [["810d184e45e085f3", "8d9fdd729528bd5e"], ["c70ad411bd86bbdd", "27f7edf9e0813754"]],
        "filter": [["09bfcb6a3a88f7f4", "988b1fc1bb6e4628"], ["b81fe27f65880d79", "c27b6c1ed8ff6268"]],
    },
    "tiny": {
        "script": [["d7b7a0dbf06b2883", "84327dfed2c05652"], ["f6ba63534d3465db", "c6836f30e0d7216a"]],
        "synthesize": [["18477da1aea57d90", "e84850c202a5cff9"], ["66bdb5e91c68bf12", "3e40212be683e9e7"]],
        "filter": [["68d2a2cc53e947b2", "2a181f7f2f5ab9e1"], ["09d9fa2b5685dd49", "01edffce4a4b580e"]],
    },
}


def pinned_versions(*packages: str) -> dict[str, str]:
    return dict.fromkeys(packages, "pinned")


def stage_keys(tmp_path, name: str) -> dict[str, list[list[str]]]:
    if name == "tiny":
        path = tiny_config(tmp_path)
    else:
        config = yaml.safe_load((REPO / "configs" / name).read_text())
        config["output"] = str(tmp_path / "out")
        path = tmp_path / name
        path.write_text(yaml.safe_dump(config))
    ctx = build.BuildContext.load(path)
    return {stage: [ctx.layout.keys[stage][c] for c in sorted(ctx.layout.keys[stage])] for stage in STAGES}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_stage_keys_are_unchanged(tmp_path, monkeypatch, name):
    monkeypatch.setattr(builtin, "library_versions", pinned_versions)
    monkeypatch.setattr(embeddings, "library_versions", pinned_versions)
    monkeypatch.setattr(registry, "library_versions", pinned_versions)
    assert stage_keys(tmp_path, name) == GOLDEN[name]
