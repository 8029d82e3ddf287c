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
# - the embedded LLM server decodes prompts in blocks of 64 tokens and reuses the whole blocks a prompt shares
#   with the previous one (llama_serve.reuse_whole_blocks; in the key as part of EMBEDDED_SAMPLER), and its
#   prompts lose the request tag (script.request_tag now defaults to off for the embedded server): its
#   replies changed for the same settings.
# - "tiny" only: the test config asks for 2 script attempts a round (tests/conftest.py), not a format change.
# - smoke.yaml only: the README build writes with the 1.5B embedded writer (script.embedded.model), a config
#   change; the 0.5B's keys (tiny, smoke-mixed) are unchanged.
GOLDEN = {
    "smoke-mixed.yaml": {
        "script": [
            ["43e9430e43175d41", "6eb01e73e2e6f771", "5dfe1f5b46fb14e6", "426fcc9a8a10e343"],
            ["20486ea088a8c231", "d5d1a8c1d895485b", "738ebfec0e5af154", "a14f59be7167847b"],
            ["247c9766c6aa2c99", "ba588f9fd591e055", "68ed0e444fb20155", "ce0e512c42b13006"],
            ["ae0469e236ccc3b5", "d5f0d9af540c7b6c", "11f756e90fa6997a", "39e18eac1609af49"],
        ],
        "synthesize": [
            ["966d68608fa1344e", "e224592a669651fe", "0475383f7286a841", "122c6003b2436aa5"],
            ["bba33687b3172301", "ac40eb8ed74d96df", "46d60e560ffaa0f2", "5a1aaf0d2b53c84c"],
            ["6eaec6e1a9a579d1", "87f8f30d2e008a6c", "796cf0ebc001de2f", "a95fcfbd01aec934"],
            ["ecaa48408f35afc3", "67f137c8e3cce8cb", "ad026e6f1c75fbf5", "9138e748dd947ee4"],
        ],
        "filter": [
            ["271c4137d304d5fa", "a378e98e7a71f69f", "5617d09f09838f96", "e8890f257195bb02"],
            ["84227b65d80a2271", "28dac141a295a3da", "8914d9411d5b7fc1", "25179f85e352820b"],
            ["4263cf7fe60f3215", "6fc8bd6fc4cb979c", "0698eed5f6e32c66", "d86bf4b8f25e4801"],
            ["0511d719be2e613d", "c3108ce18f7ec94f", "f1b7b273f2b3dfd5", "9a2aaef890663b35"],
        ],
    },
    "smoke.yaml": {
        "script": [["d35b0b233afc3a83", "d9916b2bf6950d52"], ["fdd9f3b2b52daea4", "1ecb54648658f984"]],
        "synthesize": [["50529785797a93d7", "46e09388d5bdbe2b"], ["ab06cf282529be1d", "cc1a14192c4799ac"]],
        "filter": [["36028d86152800d7", "2b93e65229cbb839"], ["c0774f7fe852bd92", "12e806ae4c7239cc"]],
    },
    "tiny": {
        "script": [["e8718f601eae09ce", "6615ab1109fe5e11"], ["4275cf9fcb6d3f40", "485bc3f88e0684a8"]],
        "synthesize": [["32b0ba7bf7725108", "5d16b1e12b5e67ef"], ["4a81fc0c6adce0e6", "caedbac57e59e3e9"]],
        "filter": [["710cfa2b12124947", "cb58bf564e410e49"], ["14d2a7d1e4a15651", "063ff03d68db7b34"]],
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
