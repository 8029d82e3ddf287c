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
#   is trusted or distrusted by name any more. "tiny" also measures it on 4 of the cases (tests/conftest.py).
GOLDEN = {
    "smoke-mixed.yaml": {
        "script": [
            ["f21e23e6fcd4dd0b", "2f37c98b57ab60c8", "ddd4013ee759fb5c", "5d42192e6dbb5d57"],
            ["10cf5ddff6c2ff73", "704658fc052f7404", "b6d6c7e767425485", "429b265250a2a5da"],
            ["78214e4175893470", "d4fa029d4b291503", "2a57bccfb7611f1c", "e6859ea5ca525059"],
            ["0978c625fddfe637", "b318fc1fd90e2deb", "01caf1a4f395c505", "ff6a04eb1f54b1b5"],
        ],
        "synthesize": [
            ["f5e2afaa336db8a0", "2abab0f0f352fefd", "62bc8ae9bf9a8470", "c11b7f432da9df00"],
            ["d445d2d34d0ec285", "c6cfc2f76b1aab63", "555d89cd0b905055", "8f090419c78766a1"],
            ["e1dd221fa78361d2", "daad603c60f7007c", "96016b316a524a88", "afe09c14a2af21c8"],
            ["4fb868032c8d2166", "279fc6afe751974b", "dd24902f83bd568a", "3fde80418651e496"],
        ],
        "filter": [
            ["bd810536fe925ba5", "fed4694adfc55bfb", "13b72caf0e4d5659", "83050442bda98488"],
            ["853be6c4d7d18d62", "05daad92a184e8c0", "cda3c4b6cf75f0a3", "5e4c627ec1b42b7c"],
            ["db83d050180b8a43", "5e2062de8215ecd8", "f389cb1a9bc4d5ea", "4d7b51ed170ad9bb"],
            ["694f1c569d9e263a", "bd6b9a17e7bc1f88", "6da64e7a54a4a8ff", "d19975375a96c485"],
        ],
    },
    "smoke.yaml": {
        "script": [["2883b5c714957ebd", "84d4eca72fbaa7af"], ["a4dfdc89289fb2f7", "25c3f21cad6267d2"]],
        "synthesize": [["e2331ca42d1ce7fd", "aee7db47b39f9301"], ["1834a13b9cf62c57", "4b847573b570154d"]],
        "filter": [["fcebe56af2774676", "f343854d31c518fe"], ["86d0b38d498998f2", "47bb8487ee14eb3b"]],
    },
    "tiny": {
        "script": [["631d6777f80f8818", "36e42292470f3957"], ["33b9b6f5b2b17718", "290d60620c785572"]],
        "synthesize": [["e772c2af5231cf75", "5d0ebdf367834bf9"], ["121536a605d073c3", "39663ebb5ad1b5a3"]],
        "filter": [["4a6ed4a7536efce7", "ffe8d6b9a14bce64"], ["6255f7f9c605bb2d", "89984adc1eb5e3f8"]],
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
