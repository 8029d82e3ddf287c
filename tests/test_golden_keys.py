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
GOLDEN = {
    "smoke-mixed.yaml": {
        "script": [
            ["12e392b03f2ad2fa", "f0c97c07c3873e00", "6737d851b483332d", "5c9f9635e7690eac"],
            ["feb92e62a3954dfd", "7e88ce6e4e0c8d98", "de0381623e80f5b0", "fdfe5df754d96a79"],
            ["7f9cda2b237f07e3", "ddb64e8b04db3c40", "d958c1df4da17ced", "401ef12b55133dd4"],
            ["0487b8651de22ea3", "9b57a3d8bf3c1739", "223833eb7ed58e16", "21fc5c966385f9d3"],
        ],
        "synthesize": [
            ["07dee7c20696d31c", "fc5fb58f77171d51", "5ca57a5dd1d7fc08", "71c6069ffe77df73"],
            ["263dadf7e8c255f2", "a3a691ab36fa3f0a", "26ca443cca2aa919", "06bd065a332da205"],
            ["86c70b900aafc7e8", "84e15c84bf2f363e", "e60fe4ecbe76f22c", "7e851a268c35f8d8"],
            ["27f497c57c191b01", "c9bc758d21af07bc", "30cfdc30f810c671", "36ea450d838eefb7"],
        ],
        "filter": [
            ["007b4593b655cf1c", "0c1c7bee7ce82464", "dd949b768240f5fe", "2dc11dc5b9d87ffa"],
            ["0b80e33590245995", "e773dd5d3c067fc3", "d6569af6267abda6", "e6e60dcad1b89a5b"],
            ["704613f121fd6695", "8b35012262899417", "38758da906eb4410", "29e0894030c35517"],
            ["733c4f7c2587d4d9", "77a000fc74a81ec1", "6ed43a79454a46bf", "7fdc063503e66e32"],
        ],
    },
    "smoke.yaml": {
        "script": [["74d133770e116a2b", "7b321289fedb8979"], ["63ca0e798b35dd39", "730025fffcf6b2e1"]],
        "synthesize": [["dda63bcd2d7ca35d", "beb171ba86cc62fe"], ["b48c1ef2a478e35b", "b45e1f34b1a0dc97"]],
        "filter": [["496efaa0c71ab6ec", "3e8345c726954cf0"], ["e7fe955d55937a57", "d9db7d95e5652f29"]],
    },
    "tiny": {
        "script": [["6f3d3f34e3d04ba5", "e5cddff6f57916ae"], ["7df4730c4f8d4173", "2b3c6ca3f7c51f08"]],
        "synthesize": [["dfb1d156365bc62f", "addc52b7cdec81e3"], ["36984045aee457a5", "465793b11bbd6638"]],
        "filter": [["fe0d2a966eecfd64", "1031c2ce23e6d6c5"], ["e5f6ef407adea9d9", "e7d29ede0a41864a"]],
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
