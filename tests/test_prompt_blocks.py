"""Which prompt tokens the embedded server keeps from the previous request: whole blocks only."""

from empathy_data.stages.script.llama_serve import reusable_prefix


def test_only_whole_shared_blocks_are_kept():
    held = list(range(200))
    assert reusable_prefix(held, list(range(149)) + [-1] * 100, 64) == 128
    assert reusable_prefix(held, list(range(63)) + [-1] * 10, 64) == 0
    assert reusable_prefix([], list(range(100)), 64) == 0


def test_the_last_prompt_token_is_always_decoded_again():
    held = list(range(200))
    assert reusable_prefix(held, list(range(128)), 64) == 64  # 127 shared before the last token
    assert reusable_prefix(held, list(range(129)), 64) == 128
