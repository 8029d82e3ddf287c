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
# - the plan key holds each label mix's (and each scenario list's) key order (planning/plan.py key_order): the balanced sequences follow
#   the order written, so the same mixes in another order plan other dialogues and must not share a key.
GOLDEN = {
    "smoke-mixed.yaml": {
        "script": [
            ["2f42da9372df815a", "de7865a1ab7b8aba", "685d8accdf417341", "95b5f0765a9a3952"],
            ["90cd64f8ec0176a5", "83213b5d00191d6e", "818de54d4de13fde", "30b76722a385ec5a"],
            ["ad9124d5678d6f4a", "d464dff76f1381a6", "7c853b41cd160706", "32240ec2d738439e"],
            ["3d55455ba908769e", "ffba047bb6b77c6d", "391c1f6231d28661", "c0b99979bdef3d64"],
        ],
        "synthesize": [
            ["124e94d5ce32ad69", "4b20ae203faa4e3e", "7fada6cfcec665c3", "6859e381ff9e5809"],
            ["fe48becb0e7f3f02", "912a65d36d849952", "52a42f413b9bb08d", "5702687cf9385be5"],
            ["190a611ffee5dcd1", "0db6df670f4999fe", "67ba035fefe47963", "02dc47019155fed6"],
            ["a6d880215c2fb116", "a52a2422f28d59b9", "65fa7cd0fe426792", "d4e15f4c2f37196e"],
        ],
        "filter": [
            ["1778931ce2d50fe0", "d9f6621fbbe9a30f", "e7e102a6bb3e42e9", "975f8f33e086cc3f"],
            ["562a4c9fac65a63e", "84637b049887fc28", "0fe628be869a2446", "9d60c79048282fae"],
            ["fc43624b6f97677d", "ecd130978ff25dea", "195dcfe5129c87cd", "e760788c695c95d6"],
            ["643ca3bdb6bfbe44", "aa28422d049153af", "3f65d744a0687d4a", "709bd76a5941f98e"],
        ],
    },
    "smoke.yaml": {
        "script": [["014f66b8beb20181", "f84c0947c7b741a6"], ["fc511dda0a19e8aa", "ab19ee629a13e757"]],
        "synthesize": [["b8256cd45730af4a", "76b026b6ef88387d"], ["8295cac2649c80b9", "cdf66d88a50f11d2"]],
        "filter": [["c28295ecd5823f6d", "76e440ca6ae80dea"], ["eba55fab1dcc1b44", "ef8dba36165316e7"]],
    },
    "tiny": {
        "script": [["1a7f335bf8304a8b", "481c1c3280c0aa0e"], ["edff38e1de765251", "79c4e07a7334f2dc"]],
        "synthesize": [["88dfe36f1675f08d", "0708070b86ac0596"], ["7a73ffc7e6c5f6c2", "fb0eb475491b61fa"]],
        "filter": [["8c4102784aa85c59", "20abea87cacc82a9"], ["a8f368ffbcdcb974", "b0a9c1eff77a6eca"]],
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
