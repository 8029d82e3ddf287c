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
GOLDEN = {
    "smoke-mixed.yaml": {
        "script": [
            ["8aa1ec9b55b9fc32", "609b58114186baa0", "3135ea8fe66e6043", "b483a78aca2635ec"],
            ["507cc012dcf592fd", "0fb55d7a5cf2d8d7", "6cde2abbb20cc787", "ceac0600afcc9770"],
            ["b11ac113f3a7a766", "08d0a9059c697bed", "5f68a6253be273b0", "a7db89fb7d1ba552"],
            ["fdfd8e624bb1a19f", "ffcd2c5e291f109b", "492636c3a74e7d04", "933fbd1c78b2d58f"],
        ],
        "synthesize": [
            ["b9e5a4c4d07109ea", "909d6e8bb307a189", "91dfaa84941ec6ab", "8128667d16245f5b"],
            ["15a08edbd32fce6d", "5b3e7abdde544d65", "b569cc3774e0e923", "a40a766d96ac8f9c"],
            ["abe174ff2467bb60", "99f0b8d1d74a21a9", "466d22a3d0ee2034", "5a75f2c98e32c068"],
            ["672fb58afa6e7086", "40c48c067edce446", "51aff5ae77517e92", "880cf0ce3d4449ad"],
        ],
        "filter": [
            ["37dd6d341ddebabc", "dd38b5b4ec77c6a1", "8d5340b1f5d3c27e", "e11826b85efe614c"],
            ["faef483cc12f5acf", "d96ca0d11405f9b5", "6cc26f46884b1460", "44eb1240a6e8b2c2"],
            ["5586c5fdc583579a", "d70c5a5915808f3e", "9bf575820d936e8b", "77e44951ac1314c4"],
            ["af9efa0d7ea7e0aa", "f0cf222974a29188", "1b33a14df4202cfc", "26569a34691d9c4d"],
        ],
    },
    "smoke.yaml": {
        "script": [["70bf7181b3f49b66", "8d166247a6ccd261"], ["8bb1877dd0021c22", "2de6f70ac572760f"]],
        "synthesize": [["810d184e45e085f3", "0ff1c72e1ee501fc"], ["c70ad411bd86bbdd", "97c5b5f1f97e0b6d"]],
        "filter": [["2258387bd965a378", "fd5728a3f404dad7"], ["392153329a0a8563", "5188e33207abb961"]],
    },
    "tiny": {
        "script": [["e6a28522b20be609", "4dca628e0c5d4206"], ["0910227685945610", "dc6af526a62d5c1e"]],
        "synthesize": [["a2e1c2c4cd2c7120", "86beee5479ecbfa4"], ["c15481031fa3b9f0", "4bcd49048552335f"]],
        "filter": [["d590264887977976", "8fea19cbff644a0a"], ["1e364c63770b11c0", "71c6a3c5b061aefc"]],
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
