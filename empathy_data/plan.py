"""plan: spec i is a pure function of (config, i). Every label of the corpus is decided here."""

from __future__ import annotations

import random
from dataclasses import dataclass

from empathy_data.config import BuildConfig
from empathy_data.errors import ConfigError
from empathy_data.hashing import digest
from empathy_data.labels import DEFAULT_STYLE_BY_EMOTION
from empathy_data.prompt_library import PromptLibrary
from empathy_data.schema import DialogueSpec, TurnPlan
from empathy_data.speakers import SpeakerPool


def weighted_choice(rng: random.Random, weights: dict) -> object:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys], k=1)[0]


@dataclass(frozen=True)
class Planner:
    config: BuildConfig
    prompts: PromptLibrary
    pool: SpeakerPool

    def __post_init__(self) -> None:
        scen = self.config.distributions.scenarios
        if scen is not None:
            for language in self.config.languages:
                unknown = sorted(set(scen) - set(self.prompts.scenarios[language]))
                if unknown:
                    raise ConfigError("distributions.scenarios", f"unknown scenario(s) for {language}: {unknown}")
        for language in self.config.languages:
            if len(self.pool.matching(language)) < 2:
                raise ConfigError(f"{self.pool.path}", f"needs at least two {language} speakers (user and assistant)")
            for gender in self.config.distributions.gender:
                if not self.pool.matching(language, gender):
                    raise ConfigError(f"{self.pool.path}", f"no {language} speaker of gender {gender!r}")

    @property
    def key(self) -> str:
        """Everything a spec depends on, hashed: changes here invalidate every later stage."""
        return digest(
            {
                "seed": self.config.seed,
                "languages": self.config.languages,
                "distributions": self.config.distributions.model_dump(mode="json"),
                "speakers": [s.to_dict() for s in self.pool.speakers],
                "scenarios": self.prompts.scenarios,
            }
        )

    def dialogue_id(self, index: int) -> str:
        return "dlg-" + digest([self.config.seed, index], 12)

    def spec(self, index: int) -> DialogueSpec:
        cfg = self.config
        dist = cfg.distributions
        rng = random.Random(f"{cfg.seed}:{index}")
        language = str(weighted_choice(rng, cfg.languages))
        scenarios = self.prompts.scenarios[language]
        scenario_weights = (
            {k: v for k, v in dist.scenarios.items() if k in scenarios}
            if dist.scenarios
            else {k: 1.0 for k in scenarios}
        )
        scenario = str(weighted_choice(rng, scenario_weights))
        gender = str(weighted_choice(rng, dist.gender))
        age_group = str(weighted_choice(rng, dist.age_group))
        user = self.pool.draw_user(rng, language, gender, age_group)
        assistant = self.pool.draw_assistant(rng, language, user)
        styles = dist.response_style or {}
        turns: list[TurnPlan] = []
        for _ in range(int(weighted_choice(rng, dist.exchanges))):
            emotion = str(weighted_choice(rng, dist.user_emotion))
            style = str(weighted_choice(rng, styles.get(emotion) or DEFAULT_STYLE_BY_EMOTION[emotion]))
            turns.append(TurnPlan(role="user", emotion=emotion))
            turns.append(TurnPlan(role="assistant", response_style=style))
        return DialogueSpec(
            dialogue_id=self.dialogue_id(index),
            index=index,
            language=language,
            scenario=scenario,
            scenario_text=scenarios[scenario],
            user=user,
            assistant_voice=assistant,
            turns=turns,
        )

    def chunk(self, chunk_index: int) -> list[DialogueSpec]:
        start = chunk_index * self.config.chunk_size
        stop = min(start + self.config.chunk_size, self.config.num_dialogues)
        return [self.spec(i) for i in range(start, stop)]

    @property
    def num_chunks(self) -> int:
        return -(-self.config.num_dialogues // self.config.chunk_size)
