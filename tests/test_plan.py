from collections import Counter

import pytest

from empathy_data.core.errors import ConfigError
from empathy_data.core.labels import AGE_GROUPS, GENDERS
from empathy_data.core.resources import speaker_pool_path
from empathy_data.planning.speakers import load_pool
from tests.helpers import REPO, make_context, pool_with_clip


def test_spec_depends_only_on_seed_and_index(tmp_path):
    a = make_context(tmp_path, num_dialogues=10, chunk_size=3)
    b = make_context(tmp_path, num_dialogues=500, chunk_size=64)
    assert [a.planner.spec(i) for i in range(10)] == [b.planner.spec(i) for i in range(10)]
    assert a.planner.chunk(1) == [b.planner.spec(i) for i in (3, 4, 5)]
    c = make_context(tmp_path, seed=4)
    assert c.planner.spec(0).dialogue_id != a.planner.spec(0).dialogue_id


def test_dialogue_ids_unique(tmp_path):
    ctx = make_context(tmp_path, num_dialogues=2000)
    ids = {ctx.planner.dialogue_id(i) for i in range(2000)}
    assert len(ids) == 2000


def test_turn_structure_and_labels_come_from_plan(tmp_path):
    ctx = make_context(tmp_path, distributions={"exchanges": {1: 0.5, 3: 0.5}})
    for i in range(50):
        spec = ctx.planner.spec(i)
        assert len(spec.turns) in (2, 6)
        assert [t.role for t in spec.turns] == ["user", "assistant"] * spec.num_exchanges
        assert all(t.emotion for t in spec.turns[::2]) and all(t.response_style for t in spec.turns[1::2])
        assert spec.user.id != spec.assistant_voice.id
        assert spec.assistant_voice.age_group in ("young_adult", "adult")


def test_sampled_distribution_follows_config(tmp_path):
    ctx = make_context(
        tmp_path,
        distributions={
            "user_emotion": {"sad": 0.5, "happy": 0.3, "angry": 0.2},
            "gender": {"female": 0.8, "male": 0.2},
            "age_group": {"child": 0.5, "elderly": 0.5},
            "exchanges": {1: 1.0},
        },
    )
    specs = [ctx.planner.spec(i) for i in range(3000)]
    emotions = Counter(s.turns[0].emotion for s in specs)
    genders = Counter(s.user.gender for s in specs)
    ages = Counter(s.user.age_group for s in specs)
    assert set(emotions) == {"sad", "happy", "angry"}
    assert abs(emotions["sad"] / 3000 - 0.5) < 0.03 and abs(emotions["angry"] / 3000 - 0.2) < 0.03
    assert abs(genders["female"] / 3000 - 0.8) < 0.03
    assert set(ages) == {"child", "elderly"}


def test_builtin_pool_covers_every_gender_and_age():
    pool = load_pool(speaker_pool_path("builtin", REPO))
    english = pool.matching("en")
    assert len(english) >= 24
    assert len({s.voice["voice"] + s.voice["variant"] + str(s.voice["pitch"]) for s in english}) == len(english)
    for gender in GENDERS:
        for age in AGE_GROUPS:
            assert pool.matching("en", gender, age), (gender, age)
            assert pool.matching("zh", gender, age), (gender, age)


def test_unknown_scenario_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="unknown scenario"):
        make_context(tmp_path, distributions={"scenarios": {"moon_landing": 1.0}})


def test_bad_speaker_pool_names_entry(tmp_path):
    pool = tmp_path / "pool.yaml"
    pool.write_text("speakers:\n- {id: a, gender: female, age_group: adult, language: en}\n- {id: b, gender: robot}\n")
    with pytest.raises(ConfigError, match=r"speakers\[1\]\.gender"):
        make_context(tmp_path, speaker_pool=str(pool))


def test_speaker_clip_outside_pool_dir_is_rejected(tmp_path):
    pool = pool_with_clip(tmp_path, "../../etc/passwd")
    with pytest.raises(ConfigError, match="leaves the pool directory"):
        make_context(tmp_path, speaker_pool=str(pool))


def test_missing_speaker_clip_is_reported(tmp_path):
    pool = pool_with_clip(tmp_path, "clips/a.wav")
    with pytest.raises(ConfigError, match=r"clips\.neutral\[0\].*missing file"):
        make_context(tmp_path, speaker_pool=str(pool))


def test_plan_key_follows_clip_contents_not_where_the_pool_lives(tmp_path):
    import shutil

    import numpy as np
    import soundfile as sf

    from tests.helpers import sine

    first = tmp_path / "pool-a"
    first.mkdir()
    sf.write(first / "clip.wav", sine(200, 4.0), 16000)
    pool = pool_with_clip(first, "clip.wav")
    key = make_context(tmp_path, speaker_pool=str(pool)).planner.key
    moved = tmp_path / "mounted" / "elsewhere"
    shutil.copytree(first, moved)
    moved_ctx = make_context(tmp_path, speaker_pool=str(moved / "pool.yaml"))
    assert moved_ctx.planner.key == key  # a copied or re-mounted pool is the same build
    [clip] = moved_ctx.planner.pool.speakers[0].clips["neutral"]
    assert clip.path == "clip.wav"  # specs hold pool-relative paths...
    resolved = moved_ctx.planner.pool.resolve(moved_ctx.planner.pool.speakers[0])
    assert resolved.clips["neutral"][0].path == str((moved / "clip.wav").resolve())  # ...backends get real ones
    sf.write(moved / "clip.wav", sine(200, 4.0) * np.float32(0.5), 16000)  # edited in place, same path
    assert make_context(tmp_path, speaker_pool=str(moved / "pool.yaml")).planner.key != key


def test_backend_identity_in_stage_keys_follows_weights_and_library(tmp_path, monkeypatch):
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "model.bin").write_bytes(b"weights v1")
    asr = {"backend": "transformers", "model": str(weights)}
    key = make_context(tmp_path, filter={"asr": asr}).layout.keys["filter"][0][0]
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "model.bin").write_bytes(b"weights v1")
    assert make_context(tmp_path, filter={"asr": {**asr, "model": str(copy)}}).layout.keys["filter"][0][0] == key
    (copy / "model.bin").write_bytes(b"weights v2")
    assert make_context(tmp_path, filter={"asr": {**asr, "model": str(copy)}}).layout.keys["filter"][0][0] != key
    from empathy_data.backends import registry

    monkeypatch.setattr(registry, "library_versions", lambda *names: {n: "99.0" for n in names})
    assert make_context(tmp_path, filter={"asr": asr}).layout.keys["filter"][0][0] != key


def test_a_mix_written_in_another_order_plans_under_another_key(tmp_path):
    """The balanced sequences follow each mix's weights in the order written: the same config re-dumped with
    sorted keys plans other dialogues, so it must not share the plan key (a resumed build would mix plans)."""
    import yaml

    from empathy_data.runtime.build import BuildContext

    config = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    config["output"] = str(tmp_path / "out")
    contexts = []
    for name, sort_keys in (("as-written", False), ("again", False), ("sorted", True)):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=sort_keys))
        contexts.append(BuildContext.load(tmp_path / f"{name}.yaml"))
    written, again, resorted = contexts
    assert written.planner.key == again.planner.key
    assert [written.planner.spec(i) for i in range(6)] == [again.planner.spec(i) for i in range(6)]
    differ = [i for i in range(6) if written.planner.spec(i) != resorted.planner.spec(i)]
    assert differ and written.planner.key != resorted.planner.key
    assert written.layout.keys["script"][0][0] != resorted.layout.keys["script"][0][0]
