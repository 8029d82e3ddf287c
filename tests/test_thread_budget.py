"""The build divides its cores among the models that compute at once (runner.cpus / runner.max_workers):
the embedded LLM server, Whisper and DNSMOS never ask for more threads together than there are cores."""

import os

import pytest

from empathy_data.backends.registry import filter_identity, key_of
from empathy_data.config.model import FasterWhisperASR, parse_config
from empathy_data.core.cpus import thread_share, usable_cpus
from empathy_data.stages.script.llama_server import LlamaServer


@pytest.mark.parametrize(("cpus", "tasks", "share"), [(2, 2, 1), (2, 1, 2), (16, 2, 8), (16, 3, 5), (1, 4, 1)])
def test_the_share_never_sums_past_the_cores(cpus, tasks, share):
    assert thread_share(cpus, tasks) == share
    assert share * tasks <= cpus or share == 1


def test_unset_thread_counts_get_the_runner_share_and_set_ones_stay():
    config = parse_config({"runner": {"max_workers": 2, "cpus": 8}, "filter": {"mos": {}}})
    assert config.script.embedded.n_threads == 4
    assert config.filter.asr.cpu_threads == 4 and config.filter.mos.threads == 4
    mine = parse_config({
        "runner": {"max_workers": 2, "cpus": 8},
        "script": {"embedded": {"n_threads": 3}},
        "filter": {"asr": {"backend": "faster-whisper", "cpu_threads": 1}, "mos": {"threads": 2}},
    })  # fmt: skip
    assert (mine.script.embedded.n_threads, mine.filter.asr.cpu_threads, mine.filter.mos.threads) == (3, 1, 2)


def test_without_cpus_the_share_follows_this_process_affinity():
    config = parse_config({"runner": {"max_workers": 1}})
    assert config.filter.asr.cpu_threads == usable_cpus() == len(os.sched_getaffinity(0))


def test_a_validated_config_keeps_its_threads_when_validated_again():
    config = parse_config({"runner": {"max_workers": 2, "cpus": 6}})
    again = parse_config(config.model_dump(mode="json"))
    assert again.filter.asr.cpu_threads == 3 and again.script.embedded.n_threads == 3


def test_thread_counts_are_not_in_the_stage_keys():
    """Threads change speed, not output (tests/test_filter.py, tests/test_llm_determinism.py): a machine
    with more cores finds the chunks another machine built."""
    small = parse_config({"runner": {"cpus": 1}, "filter": {"mos": {}}})
    large = parse_config({"runner": {"cpus": 32}, "filter": {"mos": {}}})
    assert filter_identity(small.filter) == filter_identity(large.filter)
    assert key_of("asr", FasterWhisperASR(cpu_threads=1)) == key_of("asr", FasterWhisperASR(cpu_threads=8))


def test_the_embedded_server_decodes_prompts_on_its_share_too(tmp_path):
    command = LlamaServer(tmp_path / "m.gguf", n_threads=3, n_ctx=512, log_path=tmp_path / "log").command()
    assert command[command.index("--n_threads") + 1] == "3" and command[command.index("--n_threads_batch") + 1] == "3"
