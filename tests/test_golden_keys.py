"""Golden stage keys: what a finished build's chunk store is found by. A change to these values makes
every existing build start over; it must be on purpose (a documented format change), never a side effect
of moving code. Library versions are pinned here (they are in the keys on purpose, and move with installs)."""

from __future__ import annotations

import pytest
import yaml

from empathy_data.backends import registry
from empathy_data.runtime import build
from empathy_data.stages.script import embeddings
from tests.conftest import REPO, tiny_config

GOLDEN = {
    "smoke-mixed.yaml": {
        "script": [
            ["411ef867fe6349d1", "ef383219a24900c0", "515b196e2a4ba1f5", "14fba5516852656e"],
            ["3a011acbfd08b57c", "f9a23edd87b9b5c7", "e19754f9fafb71ab", "e0ce270005fefe95"],
            ["e47b426f2f46dc15", "b038f84450140181", "32c5ddfb8577aae6", "5667c0fe0fa3b97f"],
            ["581ab92aaafde04a", "b896651a02adf4a1", "818a178b89ba2fa1", "e0ff6caab2c9ea0f"],
        ],
        "synthesize": [
            ["b0fc6b27e26cb713", "8aef32ce37febdd8", "15cf75c135c2bb7e", "5418521b233cbcfd"],
            ["5cb027aed172c95e", "156eec5d6705c9a0", "348cef28c9d652b3", "a77036867273d2b9"],
            ["6cab96af19ff1b9d", "c1eab33866ebc708", "9de13fc328d436cf", "f94670505de8cdb0"],
            ["c255cd314c8d2d02", "f9a850005b37ac63", "9e9301c6db2311a8", "379c9b9a2bd41a87"],
        ],
        "filter": [
            ["6ae20fea74725e2d", "aa662268eb19c317", "5da8efb580993f3d", "5605df055e16bb85"],
            ["dbb680c30e90f68f", "158370077b3fc9cd", "19cfd5487d55e64c", "54e4c46d5a06cf81"],
            ["4f161c40735fa680", "a8fb1950bc75740a", "591daf918d61a93c", "65db495365db7433"],
            ["5aad4e2ee1998367", "2b2ea7dba9a2992d", "a87176ba0e08e14d", "9bdf8f1507d5400e"],
        ],
    },
    "smoke.yaml": {
        "script": [["02c90bb38c45981c", "20c46ce3d9a2f5ee"], ["9f6713e1e08e93c0", "145e23c60a76454c"]],
        "synthesize": [["76f13975169120cc", "0e52648c1e9743aa"], ["5df4207634ac4dfd", "a376e285efba42c2"]],
        "filter": [["d8eb20e1b5de731a", "5079c62853022ece"], ["5ae2cabcd7986755", "e4815c6b6fb7371f"]],
    },
    "tiny": {
        "script": [["9ef2199fbc045656", "8b344d7c63161a94"], ["c30adc5206a80dec", "99a43a861e222d95"]],
        "synthesize": [["916a2cea7b3531c6", "3458f1738b5a65a9"], ["07a74ef7584924af", "717f3f06bf3a08d8"]],
        "filter": [["79c1a2480b2f4967", "f58ae4f83bb07723"], ["3d39da6cf53d399a", "1471090e9c0c067e"]],
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
    return {stage: [ctx.keys[stage][c] for c in sorted(ctx.keys[stage])] for stage in build.STAGES}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_stage_keys_are_unchanged(tmp_path, monkeypatch, name):
    monkeypatch.setattr(build, "library_versions", pinned_versions)
    monkeypatch.setattr(embeddings, "library_versions", pinned_versions)
    monkeypatch.setattr(registry, "library_versions", pinned_versions)
    assert stage_keys(tmp_path, name) == GOLDEN[name]
