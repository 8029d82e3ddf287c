"""Personas that fit their scenarios: the plan pairs a scenario only with users its `ages:` and `genders:`
list, keeps every configured mix exact, and refuses in one line a mix the lists make impossible."""

from __future__ import annotations

import shutil

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from empathy_data.core.errors import ConfigError
from empathy_data.core.labels import AGE_GROUPS, EMOTIONS, GENDERS
from tests.helpers import REPO, make_context
from tests.test_allocation import shares, worst_prefix_error


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_no_spec_pairs_a_scenario_with_a_user_it_does_not_fit(tmp_path_factory, data):
    language = data.draw(st.sampled_from(["en", "zh"]))
    distributions = {"user_emotion": shares(data.draw, list(EMOTIONS)), "age_group": shares(data.draw, list(AGE_GROUPS)),
                     "gender": shares(data.draw, list(GENDERS))}  # fmt: skip
    n = data.draw(st.integers(1, 80))
    ctx = make_context(tmp_path_factory.mktemp("p"), num_dialogues=n, languages={language: 1.0},
                       seed=data.draw(st.integers(0, 999)), distributions=distributions)  # fmt: skip
    specs = [ctx.planner.spec(i) for i in range(n)]
    prompts = ctx.planner.prompts
    for spec in specs:
        assert prompts.fits(language, spec.scenario, spec.user.gender, spec.user.age_group), spec
        assert spec.turns[0].emotion in prompts.scenario_emotions[language][spec.scenario], spec
    for values, mix in (
        ([s.turns[0].emotion for s in specs], distributions["user_emotion"]),
        ([s.user.age_group for s in specs], distributions["age_group"]),
        ([s.user.gender for s in specs], distributions["gender"]),
    ):
        assert worst_prefix_error(values, mix) <= 1 + 1e-6


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("age", AGE_GROUPS)
def test_every_age_group_gets_only_scenarios_it_fits_and_every_emotion_has_one(tmp_path, language, age):
    ctx = make_context(tmp_path, num_dialogues=70, languages={language: 1.0}, distributions={"age_group": {age: 1.0}})
    specs = [ctx.planner.spec(i) for i in range(70)]
    ages = ctx.planner.prompts.scenario_ages[language]
    assert all(age in ages[s.scenario] for s in specs)
    assert {s.turns[0].emotion for s in specs} == set(EMOTIONS)  # the default mix: every emotion has a scenario


def test_an_elderly_user_never_fears_a_school_bully_and_no_child_retires(tmp_path):
    ctx = make_context(tmp_path, num_dialogues=300)
    specs = [ctx.planner.spec(i) for i in range(300)]
    assert {s.user.age_group for s in specs if s.scenario == "school_bully"} <= {"child", "teen"}
    assert {s.user.age_group for s in specs if s.scenario == "retirement"} == {"elderly"}


def test_a_mix_the_lists_make_impossible_is_one_line(tmp_path):
    with pytest.raises(ConfigError) as caught:
        make_context(tmp_path, distributions={"age_group": {"child": 1.0}, "user_emotion": {"happy": 1.0},
                                              "scenarios": {"retirement": 0.5, "new_pet": 0.5}})  # fmt: skip
    message = str(caught.value)
    assert message.startswith("distributions.scenarios: cannot hold with user_emotion and the users' gender and age")
    assert "'retirement' fits no row with weight" in message and "\n" not in message

    prompts = tmp_path / "prompts"
    shutil.copytree(REPO / "prompts", prompts)
    scenarios = yaml.safe_load((prompts / "scenarios" / "en.yaml").read_text())
    for entry in scenarios.values():
        if "sad" in entry["emotions"]:
            entry["ages"] = ["adult"]
    (prompts / "scenarios" / "en.yaml").write_text(yaml.safe_dump(scenarios))
    with pytest.raises(ConfigError, match=r"distributions.user_emotion.sad: no scenario with weight in .* fits both it "
                                          r"and child (female|male) users"):  # fmt: skip
        make_context(tmp_path, prompts_dir=str(prompts), distributions={"age_group": {"child": 1.0}})


def test_the_prompt_states_the_persona_and_whose_situation_it_is(tmp_path):
    from empathy_data.stages.script.prompting import AGE_PHRASES, build_messages

    for language, own in (("en", "It is this person's own situation"), ("zh", "这是这个人自己的经历")):
        ctx = make_context(tmp_path / language, languages={language: 1.0})
        spec = ctx.planner.spec(0)
        user = build_messages(spec, ctx.prompts)[1]["content"]
        assert own in user and AGE_PHRASES[language][spec.user.age_group] in user and spec.scenario_text in user
