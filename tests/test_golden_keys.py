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
# - script.judge measured before it gates (min_agreement, mode auto; runtime/judge_calibration.py): the judge
#   gates or records by its agreement with prompts/judge_cases.yaml, which now keys the script stage; no model
#   is trusted or distrusted by name any more. "tiny" also measures it on 4 of the cases (tests/conftest.py);
#   smoke.yaml measures the scores mode only (`judge: {mode: scores}`, a config change).
# - the plan key holds each label mix's key order (planning/plan.py key_order): the balanced sequences follow
#   the order written, so the same mixes in another order plan other dialogues and must not share a key.
GOLDEN = {
    "smoke-mixed.yaml": {
        "script": [
            ["9fbdb72212ae06ad", "761682a8899e81d6", "10d0cefec395bd21", "aa0ee2cd20203fa8"],
            ["a937ceb81e9711af", "6aa6390f7d63746e", "3db85de3a2640748", "a3e770ad1e530808"],
            ["85b3dd15090738f4", "2402137ad5904f0b", "e3abc9b590909b82", "038397df7e87139e"],
            ["89ad6005db506f43", "df83d76356bb0bbc", "70285ed5534864bd", "cdbf196ea4730183"],
        ],
        "synthesize": [
            ["47a0f3743326f619", "dee0342892cde976", "eb9900674abf83c8", "480bd388f11136b8"],
            ["f56afc6c8257a775", "9725432c4fb74c81", "6ff0a47b78fda0e4", "43492630b473f293"],
            ["768d554ea87ba5e3", "064866bde0fa266d", "06215fe4dd0b42ae", "51f562fbcf61c910"],
            ["431ca1d65c92da45", "eaca88d9a41a69ea", "5f5cc31909a42e5c", "9e13b3dd34549290"],
        ],
        "filter": [
            ["5c66a60e91bd0ed7", "c7bc1eb2558af765", "ba89405df0331b99", "9ad234d43bf62da5"],
            ["109f1b7232025ccc", "4d39c23a30c1331b", "1c719143b8a68e5c", "bae1ae9ac1f32d48"],
            ["52e56d32a16f9ad3", "72e8b365461f97a3", "37f7c7230d101a0c", "f3cac708d4495978"],
            ["ee4d70ddb7a64a90", "933a1f5fda83176a", "c1ccf19aecef1424", "bb96e40f4f70d414"],
        ],
    },
    "smoke.yaml": {
        "script": [["0559f4f1bde6872b", "9014e5870d947409"], ["afad288060cfdb70", "a7c96fed1748285d"]],
        "synthesize": [["15f3030ebfb69747", "942b1d3263016bad"], ["7ec4bc5528279ad6", "bfc7249a0421a02a"]],
        "filter": [["4f99f46e26cea82b", "4de3a5a95b416f52"], ["659280958637ebc4", "1bb00a0ebeae0e3b"]],
    },
    "tiny": {
        "script": [["f363ff75777a1df6", "2e3afb73c16c783c"], ["e35797bd55db9a56", "3e61927ff3491dbc"]],
        "synthesize": [["3aae4fe5ef544907", "df665919ed4b4190"], ["8e3b9fd89483e1bb", "f18364a60e8e18d5"]],
        "filter": [["297bd14fcc0edfba", "d65093c5eb4b874f"], ["318978dcceb14e28", "ee5b45030645146c"]],
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
        path.write_text(yaml.safe_dump(config, sort_keys=False))  # as written: the mixes' order is in the plan
    ctx = build.BuildContext.load(path)
    return {stage: [ctx.layout.keys[stage][c] for c in sorted(ctx.layout.keys[stage])] for stage in STAGES}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_stage_keys_are_unchanged(tmp_path, monkeypatch, name):
    monkeypatch.setattr(builtin, "library_versions", pinned_versions)
    monkeypatch.setattr(embeddings, "library_versions", pinned_versions)
    monkeypatch.setattr(registry, "library_versions", pinned_versions)
    assert stage_keys(tmp_path, name) == GOLDEN[name]
