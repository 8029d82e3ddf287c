import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from empathy_data.stages.export.diversity import (
    DiversityStats,
    HashedSet,
    NearDuplicates,
    opening_text,
    shingles,
    tokens,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = (
    "I have been feeling really overwhelmed at work lately and I cannot sleep at night.\n"
    "That sounds exhausting. When did you first notice the sleep trouble starting?\n"
    "About two weeks ago, right after my manager doubled my projects without asking me.\n"
    "It makes sense that you feel stretched thin. Would it help to talk through what is on your plate?"
)
PARAPHRASE = (
    "Work has been crushing me recently, so my nights are mostly spent awake.\n"
    "Oh, how draining. Since when has resting become so hard for you?\n"
    "Roughly a fortnight, once my boss handed me twice the assignments with no discussion.\n"
    "No wonder you are worn out. Shall we go over everything you are carrying together?"
)
ZH_SCRIPT = (
    "我最近工作压力特别大，每天晚上都睡不着觉，感觉整个人都快撑不住了。\n"
    "听起来你真的很辛苦。这种睡不着的情况是从什么时候开始的呢？\n"
    "大概两个星期以前，领导突然把我的项目翻了一倍，也没有问过我的意见。"
)
WORDS = "the a i you my feel sad happy work home today tired friend call help sorry really just worry sleep night day".split()


def synthetic(rng: random.Random, words: int = 60) -> str:
    return " ".join(rng.choice(WORDS + [f"w{rng.randrange(5000)}" for _ in range(3)]) for _ in range(words))


def test_tokens_en_are_lowercased_words_without_punctuation():
    assert tokens("Hello, World! I don’t KNOW...") == ["hello", "world", "i", "don't", "know"]


def test_tokens_zh_are_characters_and_latin_words_stay_whole():
    assert tokens("我的iPhone坏了，２０２４年！") == ["我", "的", "iphone", "坏", "了", "2024", "年"]


def test_short_text_shingles_fall_back_to_tokens():
    assert shingles(["i", "see"], 3) == {"i", "see"}
    assert shingles(["a", "b", "c", "d"], 3) == {"a b c", "b c d"}


def test_one_word_change_is_caught():
    dupes = NearDuplicates()
    assert dupes.check("d1", SCRIPT) is None
    assert dupes.check("d2", SCRIPT.replace("overwhelmed", "stressed")) == "d1"


def test_the_near_duplicate_index_is_not_held_in_python_memory():
    """The driver runs export's first pass over the whole corpus: the index must not grow its Python
    objects (datasketch's in-memory index held about 3.5 KB per kept dialogue). It is a temporary file."""
    import tracemalloc

    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(3000)]
    texts = [" ".join(rng.choices(vocab, k=40)) for _ in range(3000)]
    dupes = NearDuplicates()
    dupes.check("warm-up", "a text that shares nothing with the others")
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    for i, text in enumerate(texts):
        dupes.check(f"d{i}", text)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert dupes.kept == 3001
    assert held - before < 3000 * 50
    assert dupes.check("again", texts[7]) == "d7"  # and the index on disk still answers
    dupes.close()
    assert dupes.summary()["dialogues"] == 3002


def test_paraphrase_sharing_little_is_not_caught():
    dupes = NearDuplicates()
    assert dupes.check("d1", SCRIPT) is None
    assert dupes.check("d2", PARAPHRASE) is None
    assert dupes.summary() == {"near_duplicate_rate": 0.0, "near_duplicates": 0, "dialogues": 2}


def test_zh_one_character_change_is_caught():
    dupes = NearDuplicates()
    assert dupes.check("zh1", ZH_SCRIPT) is None
    assert dupes.check("zh2", ZH_SCRIPT.replace("辛苦", "辛劳")) == "zh1"
    assert dupes.check("zh3", "今天阳光很好，我们一起去公园散步吧，顺便买点水果回家。") is None


def test_first_one_is_kept_and_duplicates_are_not_indexed():
    changed = SCRIPT.replace("overwhelmed", "stressed")
    forward, backward = NearDuplicates(), NearDuplicates()
    assert [forward.check("a", SCRIPT), forward.check("b", changed)] == [None, "a"]
    assert [backward.check("b", changed), backward.check("a", SCRIPT)] == [None, "b"]
    # "b" was a duplicate, so it was not indexed: a third copy points at "a", and "b" may be checked again
    assert forward.check("c", changed) == "a"
    assert forward.check("b", changed) == "a"
    assert forward.summary() == {"near_duplicate_rate": 0.75, "near_duplicates": 3, "dialogues": 4}


def test_earliest_kept_match_is_named_not_the_most_similar():
    base = [f"w{i}" for i in range(200)]

    def changed(start: int, tag: str) -> str:
        return " ".join(f"{tag}{i}" if i in range(start, 200, 50) else word for i, word in enumerate(base))

    x, y = changed(10, "x"), changed(35, "y")  # 4 words each off the base; estimated Jaccard 0.84 and 0.91
    for order in (["x", "y"], ["y", "x"]):
        dupes = NearDuplicates()
        assert [dupes.check(name, {"x": x, "y": y}[name]) for name in order] == [None, None]  # x~y: 0.75
        assert dupes.check("base", " ".join(base)) == order[0]


def test_kept_id_checked_twice_is_an_error():
    dupes = NearDuplicates()
    dupes.check("a", SCRIPT)
    with pytest.raises(ValueError, match="a: already checked"):
        dupes.check("a", PARAPHRASE)


def test_very_short_and_empty_texts():
    dupes = NearDuplicates()
    assert dupes.check("s1", "I see.") is None
    assert dupes.check("s2", "i SEE!") == "s1"
    assert dupes.check("s3", "Okay") is None
    assert dupes.check("e1", "...") is None
    assert dupes.check("e2", "!!!") is None  # no tokens: never compared, never indexed


def test_unrelated_synthetic_dialogues_are_not_duplicates_but_copies_are():
    rng = random.Random(3)
    dupes = NearDuplicates()
    texts = [synthetic(rng) for _ in range(300)]
    assert [dupes.check(f"d{i}", t) for i, t in enumerate(texts)] == [None] * 300
    words = texts[120].split()
    words[30] = "changed"
    assert dupes.check("copy", " ".join(words)) == "d120"


def test_settings_are_checked():
    for bad in ({"threshold": 0.0}, {"threshold": 1.5}, {"num_perm": 1}, {"shingle": 0}):
        with pytest.raises(ValueError):
            NearDuplicates(**bad)


def test_distinct_n_hand_computed():
    stats = DiversityStats()
    stats.add("The cat sat.", "en")
    stats.add("the CAT ran!", "en")
    stats.add("我很好", "zh-CN")
    summary = stats.summary()
    # en unigrams: the cat sat the cat ran -> 4 distinct / 6; bigrams: the-cat cat-sat the-cat cat-ran -> 3 / 4
    assert summary["by_language"]["en"] == {"distinct_1": 4 / 6, "distinct_2": 3 / 4, "tokens": 6}
    # zh characters: 我 很 好 -> 3 / 3; bigrams 我很 很好 -> 2 / 2
    assert summary["by_language"]["zh"] == {"distinct_1": 1.0, "distinct_2": 1.0, "tokens": 3}
    assert summary["distinct_1"] == pytest.approx(7 / 9)
    assert summary["distinct_2"] == pytest.approx(5 / 6)
    assert "dialogues" not in summary  # near-duplicate figures come only with a NearDuplicates


def test_distinct_n_counts_ngrams_within_a_turn_only():
    stats = DiversityStats()
    stats.add("a b", "en")
    stats.add("b a", "en")
    stats.add("c", "en")  # one token: a unigram, no bigram
    summary = stats.summary()
    assert summary["distinct_1"] == 3 / 5
    assert summary["distinct_2"] == 2 / 2


def test_hashed_set_is_exact_across_merges():
    rng = random.Random(0)
    values = [rng.randrange(1 << 64) for _ in range(5000)]
    values += values[:2000] + [values[7]] * 100
    seen = HashedSet(min_flush=64)
    for start in range(0, len(values), 7):
        seen.update(np.array(values[start : start + 7], dtype=np.uint64))
    assert len(seen) == 5000
    seen.update(np.array([values[0], 12345], dtype=np.uint64))
    assert len(seen) == 5001


def test_top_openings_counted():
    stats = DiversityStats()
    firsts = ["I just feel so alone lately."] * 3 + ["i JUST feel, so alone!"] + ["Hi, I lost my job today."] * 2
    firsts += ["Something unique here."] + ["我今天真的很难过，因为考试没过。", "我今天真的很难受。"]
    for text in firsts:
        language = "zh" if "我" in text else "en"
        stats.add(text, language, opening=True)
        stats.add("That sounds hard.", "en")  # assistant turns are not openings
    assert stats.summary()["top_openings"] == [["i just feel so", 4], ["hi i lost my", 2], ["我今天真的很", 2]]


def test_top_openings_keeps_five_most_common_ties_by_text():
    stats = DiversityStats()
    for i, word in enumerate(["golf", "alpha", "echo", "delta", "bravo", "foxtrot", "charlie"]):
        for _ in range(2 + (i == 0)):
            stats.add(f"{word} is how I start", "en", opening=True)
    top = stats.summary()["top_openings"]
    assert top == [
        ["golf is how i", 3],
        ["alpha is how i", 2],
        ["bravo is how i", 2],
        ["charlie is how i", 2],
        ["delta is how i", 2],
    ]


def test_opening_text_by_language():
    assert opening_text("Hey... I can't, honestly, do this", "en") == "hey i can't honestly"
    assert opening_text("你好，我最近心情不太好", "zh") == "你好我最近心"
    assert opening_text("你好，我最近心情不太好", "en") == "你好我最近心"  # mostly CJK, whatever the label


def test_summary_includes_near_duplicates():
    dupes, stats = NearDuplicates(), DiversityStats()
    for i, text in enumerate([SCRIPT, SCRIPT.replace("lately", "recently"), PARAPHRASE, ZH_SCRIPT]):
        if dupes.check(f"d{i}", text) is None:
            stats.add(text.split("\n")[0], "zh" if i == 3 else "en", opening=True)
    summary = stats.summary(dupes)
    assert (summary["dialogues"], summary["near_duplicates"], summary["near_duplicate_rate"]) == (4, 1, 0.25)
    json.dumps(summary)  # goes into the manifest and card as is


def run_all(dupes: NearDuplicates, stats: DiversityStats) -> tuple[list[str | None], dict]:
    """60 dialogues, each followed by a variant with 1 to 4 words replaced (shingle Jaccard about 0.9 down to
    0.65): the borderline ones fall either side of 0.8 depending on the MinHash permutations."""
    rng = random.Random(5)
    found = []
    for i in range(60):
        words = synthetic(rng).split()
        original = " ".join(words)
        for _ in range(1 + i % 4):
            words[rng.randrange(len(words))] = f"x{rng.randrange(10**6)}"
        for name, text in ((f"o{i}", original), (f"v{i}", " ".join(words))):
            found.append(dupes.check(name, text))
            stats.add(text, "en", opening=True)
    return found, stats.summary(dupes)


def test_same_inputs_same_answers_across_instances():
    first = run_all(NearDuplicates(), DiversityStats())
    assert first == run_all(NearDuplicates(), DiversityStats())
    assert first[1]["near_duplicates"] == 30 and first[0][:2] == [None, "o0"]
    # the check has teeth: other permutations give other answers on the borderline pairs
    assert run_all(NearDuplicates(seed=2), DiversityStats())[0] != first[0]


def test_same_answers_across_processes_with_different_hash_seeds():
    code = (
        "import json; from tests.test_diversity import run_all; from empathy_data.stages.export.diversity import *;"
        "print(json.dumps(run_all(NearDuplicates(), DiversityStats())))"
    )
    outputs = [
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    ]
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0]) == json.loads(json.dumps(run_all(NearDuplicates(), DiversityStats())))
