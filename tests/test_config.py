import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from empathy_data.config.model import load_config, parse_config
from empathy_data.core.errors import ConfigError
from tests.helpers import REPO


def test_shipped_configs_validate():
    for name in ("smoke.yaml", "example-production.yaml", "example-services.yaml"):
        config, _ = load_config(REPO / "configs" / name)
        assert config.num_dialogues > 0


@pytest.mark.parametrize(
    "data, where, reason",
    [
        ({"num_dialogues": 0}, "num_dialogues", "greater than or equal to 1"),
        ({"bogus": 1}, "bogus", "unknown key"),
        ({"num_dialogs": 4}, "num_dialogs", "unknown key; did you mean 'num_dialogues'?"),
        ({"script": {"temprature": 0.5}}, "script.temprature", "did you mean 'temperature'?"),
        ({"script": {"backend": "vllm", "model": "m", "tensor_paralel_size": 2}}, "script.tensor_paralel_size",
         "did you mean 'tensor_parallel_size'?"),
        ({"filter": {"thresholds": {"max_wr": 0.2}}}, "filter.thresholds.max_wr", "did you mean 'max_wer'?"),
        ({"runner": {"max_worker": 2}}, "runner.max_worker", "did you mean 'max_workers'?"),
        ({"script": {"temperature": 5}}, "script.temperature", "less than or equal to 2"),
        ({"distributions": {"gender": {"female": 0.7, "male": 0.7}}}, "distributions", "sum to 1.4"),
        ({"distributions": {"user_emotion": {"elated": 1.0}}}, "distributions", "unknown label"),
        ({"languages": {"fr": 1.0}}, "languages", "unknown label"),
        (
            {"filter": {"thresholds": {"per_language": {"fr": {"max_cer": 0.4}}}}},
            "filter.thresholds.per_language",
            "unknown language 'fr'",
        ),
        ({"filter": {"thresholds": {"per_language": {"zh": {"max_cer": -1}}}}}, "filter.thresholds", "greater than"),
        ({"export": {"splits": {"train": 0.5}}}, "export.splits", "sum to 0.5"),
        ({"filter": {"asr": {"backend": "nope"}}}, "filter.asr", "does not match any of the expected tags"),
        ({"script": {"backend": "vllm"}}, "script.model", "Field required"),
        (
            {"synthesize": {"tts": {"backend": "xtts", "model_dir": "/m"}}},
            "<root>",
            "needs synthesize.tts.neutral_reference",
        ),
        (
            {"filter": {"emotion": {"backend": "transformers", "model": "m", "label_map": {"a": "x"}}}},
            "filter.emotion",
            "unknown emotion",
        ),
    ],
)
def test_bad_values_name_the_yaml_path(data, where, reason):
    with pytest.raises(ConfigError) as info:
        parse_config(data, "cfg.yaml")
    message = str(info.value)
    assert message.startswith(f"cfg.yaml: {where}")
    assert reason in message
    assert "\n" not in message


def test_malformed_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("seed: 1\nnum_dialogues: [1,\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: malformed YAML"):
        load_config(path)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "{}\n"])
def test_empty_config_is_an_error(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="empty.yaml: config is empty"):
        load_config(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("seed: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="malformed YAML"):
        load_config(path)


values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
keys = st.sampled_from(
    ["seed", "num_dialogues", "chunk_size", "languages", "distributions", "script", "synthesize", "filter", "export"]
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys | st.text(max_size=6), values, max_size=4))
def test_fuzzed_configs_either_load_or_raise_config_error(data):
    try:
        parse_config(data, "fuzz.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.yaml")
