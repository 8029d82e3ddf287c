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
# - "tiny" only: the test config asks for 2 script attempts a round (tests/conftest.py), not a format change.
GOLDEN = {
    "smoke-mixed.yaml": {
        "script": [
            ["8aa1ec9b55b9fc32", "d78904d74b5b20ba", "2f29d3c30aa391d9", "b7967dad437d9dd5"],
            ["507cc012dcf592fd", "3b14b322950816b7", "7b406687ef2e4b58", "26bd4e345c78976d"],
            ["b11ac113f3a7a766", "7a72de794fbae278", "c7b9619a4a36bdb7", "3f804cc70f60b142"],
            ["fdfd8e624bb1a19f", "b1e46c395a31232e", "c5b6679b2fb8d32e", "de4732d55b4e0fc8"],
        ],
        "synthesize": [
            ["b9e5a4c4d07109ea", "96ef29e24727acad", "cae085e6a3629c1c", "077d9c54acab6d58"],
            ["15a08edbd32fce6d", "772e680ef2175310", "340829cbdcfea92d", "a2333344b17f0f5e"],
            ["abe174ff2467bb60", "cbcfa8b82cec6d43", "04505f7304ea6795", "85fd995f7737155b"],
            ["672fb58afa6e7086", "53f048d79a71b64a", "8672262bef232cbd", "61c41b130672fb74"],
        ],
        "filter": [
            ["ecb0936539c922f9", "08b13811cd8ac6f3", "ad4b656785321c55", "0ab527a905fc5903"],
            ["7e757b2e077ad4db", "3917da0c62975ab8", "5ae4ae1bb4dee7ba", "44a9110cb2fa5ba6"],
            ["c9f0f68c862170be", "c062e755825c8d53", "fa4868cbc7201b07", "679b1ab8e6d45c21"],
            ["92cfedbe1ffa1cbe", "b51211efc3143d33", "8ddbe54cac28ae80", "0ee375e6cd8b0894"],
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
