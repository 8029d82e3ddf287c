"""plan: spec i is a pure function of (config, i). Every label of the corpus is decided here."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import cache
from itertools import accumulate
from typing import Any

from empathy_data.config.arcs import arc_matrix
from empathy_data.config.model import BuildConfig, Distributions
from empathy_data.core.errors import ConfigError
from empathy_data.core.hashing import digest
from empathy_data.core.labels import DEFAULT_STYLE_BY_EMOTION
from empathy_data.planning.allocation import BalancedSequence, Draw, whole_joint
from empathy_data.planning.prompt_library import PromptLibrary
from empathy_data.planning.speakers import SpeakerPool
from empathy_data.records.schema import DialogueSpec, TurnPlan

# Bumped when the way labels are allocated changes, so an old plan is never mixed with a new one.
ALLOCATION_VERSION = 4


@cache
def _turn(role: str, emotion: str | None, style: str | None) -> TurnPlan:
    return TurnPlan(role=role, emotion=emotion, response_style=style)  # frozen: one object per kind is enough


def weighted_choice(rng: random.Random, weights: dict) -> object:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys], k=1)[0]


def joint_cells(table: dict[str, dict[str, float]]) -> dict[tuple[str, str], float]:
    return {(a, b): w for a, row in table.items() for b, w in row.items() if w > 0}


def _first(cell: Hashable) -> Hashable:
    return ("first", cell[0])  # type: ignore[index]


def _second(cell: Hashable) -> Hashable:
    return ("second", cell[1])  # type: ignore[index]


@dataclass(frozen=True)
class Cell:
    """The dialogue-level labels of one planned dialogue."""

    language: str
    gender: str
    age_group: str
    emotion: str  # the first exchange's user emotion
    exchanges: int

    def labels(self) -> dict[str, str]:
        return {
            "language": self.language,
            "user_gender": self.gender,
            "user_age_group": self.age_group,
            "user_emotion": self.emotion,
            "exchanges": str(self.exchanges),
        }

    @classmethod
    def of(cls, spec: DialogueSpec) -> Cell:
        return cls(spec.language, spec.user.gender, spec.user.age_group, str(spec.turns[0].emotion), spec.num_exchanges)


@dataclass
class Planner:
    """Spec i from (seed, i) alone. Dialogue-level labels come from balanced sequences (allocation.py), so
    any prefix of the plan holds every configured mix within one dialogue; a language's overridden label
    is balanced over that language's own dialogues. The scenario is drawn among those that fit the user
    emotion (balanced over the dialogues of that emotion), later exchanges' emotions follow the arc. With
    configured `scenarios`, emotion and scenario are drawn jointly from the table that has both
    configured mixes as margins (fit_joint), balanced over the language's dialogues."""

    config: BuildConfig
    prompts: PromptLibrary
    pool: SpeakerPool
    _sequences: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    # top-up chunks after the configured ones: each maps dialogue index -> its cell
    extra_chunks: list[dict[int, Cell]] = field(default_factory=list, init=False, repr=False, compare=False)
    extra_passes: int = field(default=0, init=False, repr=False, compare=False)
    _fitted: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    # what spec() works out once per language (sequences, mixes), by key: it runs for every dialogue
    _resolved: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for language in self.config.languages:
            dist = self.config.distributions.for_language(language)
            where = "distributions" + (f".per_language.{language}" if language in self.config.distributions.per_language else "")
            self._check_scenarios(language, dist, where)
            if len(self.pool.matching(language)) < 2:
                raise ConfigError(f"{self.pool.path}", f"needs at least two {language} speakers (user and assistant)")
            for gender, age_group in self._gender_age_cells(dist):
                if not self.pool.matching(language, gender, age_group):
                    raise ConfigError(
                        f"{where}.{'gender_age' if dist.gender_age else 'age_group'}",
                        f"asks for {language} {gender} {age_group} users, but {self.pool.path} has no such speaker",
                    )

    def _check_scenarios(self, language: str, dist: Distributions, where: str) -> None:
        known = self.prompts.scenario_emotions[language]
        file = f"{self.prompts.root}/scenarios/{language}.yaml"
        if dist.emotion_scenario is not None:
            for emotion, scenario in joint_cells(dist.emotion_scenario):
                if scenario not in known:
                    raise ConfigError(
                        f"{where}.emotion_scenario.{emotion}", f"unknown {language} scenario {scenario!r}"
                    )
                if emotion not in known[scenario]:
                    raise ConfigError(
                        f"{where}.emotion_scenario.{emotion}.{scenario}", f"{file} does not list {emotion!r} for it"
                    )  # noqa: E501
            return
        if dist.scenarios is not None:
            unknown = sorted(set(dist.scenarios) - set(known))
            if unknown:
                raise ConfigError(f"{where}.scenarios", f"unknown scenario(s) for {language}: {unknown}")
        for emotion, weight in dist.user_emotion.items():
            if weight > 0 and not self.scenario_weights(language, dist, emotion):
                raise ConfigError(f"{where}.user_emotion.{emotion}", f"no scenario with weight in {file} fits it")
        if dist.scenarios is not None:
            try:
                self.fitted_emotion_scenario(language, dist)
            except ValueError as exc:
                raise ConfigError(
                    f"{where}.scenarios", f"cannot hold with user_emotion ({file} lists which emotions fit): {exc}"
                ) from None

    def fitted_emotion_scenario(self, language: str, dist: Distributions) -> dict[tuple[str, str], float]:
        """The emotion x scenario table whose margins are the configured `user_emotion` and `scenarios`
        mixes, over the pairs the language's scenario file allows."""
        if language not in self._fitted:  # a language's distributions are fixed for the planner's life
            fits = self.prompts.scenario_emotions[language]
            allowed = {(e, s) for s, emotions in fits.items() for e in emotions}
            self._fitted[language] = whole_joint(dist.user_emotion, dist.scenarios, allowed)
        return self._fitted[language]

    def scenario_weights(self, language: str, dist: Distributions, emotion: str) -> dict[str, float]:
        fits = {s for s, emotions in self.prompts.scenario_emotions[language].items() if emotion in emotions}
        weights = dist.scenarios if dist.scenarios is not None else dict.fromkeys(self.prompts.scenarios[language], 1.0)
        return {s: w for s, w in weights.items() if s in fits and w > 0}

    @staticmethod
    def _gender_age_cells(dist: Distributions) -> list[tuple[str, str]]:
        if dist.gender_age is not None:
            return list(joint_cells(dist.gender_age))
        return [(g, a) for g, gw in dist.gender.items() for a, aw in dist.age_group.items() if gw > 0 and aw > 0]

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
                "scenario_emotions": self.prompts.scenario_emotions,
                "allocation": ALLOCATION_VERSION,
            }
        )

    def dialogue_id(self, index: int) -> str:
        # digest([seed, index], 12) without the JSON encoder: the same text, a quarter of a spec's time less
        return "dlg-" + hashlib.sha256(f"[{int(self.config.seed)},{int(index)}]".encode()).hexdigest()[:12]

    def _sequence(self, name: str, scope: str, weights: dict, groups: tuple = ()) -> BalancedSequence:
        key = (name, scope, tuple(sorted((str(k), v) for k, v in weights.items())))
        if key not in self._sequences:
            self._sequences[key] = BalancedSequence(weights, f"{self.config.seed}:{name}:{scope}", groups)
        return self._sequences[key]

    def _resolve(self, key: tuple, make: Callable[[], Any]) -> Any:
        if (found := self._resolved.get(key)) is None:
            found = self._resolved[key] = make()
        return found

    def _stream(self, name: str, language: str, weights: Callable[[], dict], labels: tuple[str, ...],
                groups: tuple = ()) -> tuple[BalancedSequence, bool]:  # fmt: skip
        """The sequence a language's dialogues draw label `name` from, and whether it counts only that
        language's dialogues (it overrides the label) or every dialogue."""
        if (found := self._resolved.get((name, language))) is None:  # asked ~5 times per spec: no closure
            within = self.config.distributions.overridden(language, *labels)
            sequence = self._sequence(name, language if within else "*", weights(), groups)
            found = self._resolved[(name, language)] = (sequence, within)
        return found

    def _scenarios(self, language: str, emotion: str) -> BalancedSequence:
        """Scenarios that fit the emotion, balanced over the dialogues of that emotion."""
        dist = self.config.distributions.for_language(language)
        return self._resolve(("scenario", language, emotion), lambda: self._sequence(
            "scenario", f"{language}:{emotion}", self.scenario_weights(language, dist, emotion)))  # fmt: skip

    def spec(self, index: int) -> DialogueSpec:
        cfg = self.config
        language_draw = self._stream("language", "*", lambda: cfg.languages, ())[0].draw(index)
        language, in_language = str(language_draw.value), language_draw.rank
        dist = cfg.distributions.for_language(language)

        def draw(name: str, weights: Callable[[], dict], *labels: str, groups: tuple = ()) -> Draw:
            sequence, within = self._stream(name, language, weights, labels, groups)
            return sequence.draw(in_language if within else index)

        if dist.gender_age is not None:
            gender, age_group = draw("gender_age", lambda: joint_cells(dist.gender_age), "gender_age", "gender",
                                     "age_group", groups=(_first, _second)).value  # fmt: skip
        else:
            gender = draw("gender", lambda: dist.gender, "gender", "gender_age").value
            age_group = draw("age_group", lambda: dist.age_group, "age_group", "gender_age").value
        if dist.emotion_scenario is not None:
            emotion, scenario = draw("emotion_scenario", lambda: joint_cells(dist.emotion_scenario),
                                     "emotion_scenario", "user_emotion", "scenarios",
                                     groups=(_first, _second)).value  # fmt: skip
        elif dist.scenarios is not None:  # scenario names are the language's own: balanced within it
            sequence = self._resolve(("fitted_emotion_scenario", language), lambda: self._sequence(
                "fitted_emotion_scenario", language, self.fitted_emotion_scenario(language, dist), (_first, _second)))  # fmt: skip
            emotion, scenario = sequence.draw(in_language).value  # type: ignore[misc]
        else:
            emotion_draw = draw("user_emotion", lambda: dist.user_emotion, "user_emotion", "emotion_scenario")
            emotion = emotion_draw.value
            # balanced over the dialogues of this emotion (exactly so within one language)
            scenario = self._scenarios(language, str(emotion)).draw(emotion_draw.rank).value
        num_exchanges = int(draw("exchanges", lambda: dist.exchanges, "exchanges").value)
        return self._build(index, Cell(language, str(gender), str(age_group), str(emotion), num_exchanges), str(scenario))

    def _choices(self, kind: str, language: str, emotion: str, weights: dict) -> tuple[list, list[float]]:
        """(values, cumulative weights) of a per-emotion mix, for rng.choices (same draws as weights=)."""
        return self._resolve((kind, language, emotion), lambda: (list(weights), list(accumulate(weights.values()))))

    def _build(self, index: int, cell: Cell, scenario: str) -> DialogueSpec:
        cfg = self.config
        language = cell.language
        dist = cfg.distributions.for_language(language)
        rng = random.Random(f"{cfg.seed}:{index}")
        user = self.pool.draw_user(rng, language, cell.gender, cell.age_group)
        assistant = self.pool.draw_assistant(rng, language, user)
        styles = dist.response_style or {}
        arc = arc_matrix(dist.emotion_arc)
        turns: list[TurnPlan] = []
        current = cell.emotion
        for k in range(cell.exchanges):
            if k and current in arc:
                values, cumulative = self._choices("arc", language, current, arc[current])
                current = str(rng.choices(values, cum_weights=cumulative)[0])
            values, cumulative = self._choices(
                "style", language, current, styles.get(current) or DEFAULT_STYLE_BY_EMOTION[current]
            )
            style = str(rng.choices(values, cum_weights=cumulative)[0])
            turns += (_turn("user", current, None), _turn("assistant", None, style))
        return DialogueSpec(
            dialogue_id=self.dialogue_id(index),
            index=index,
            language=language,
            scenario=scenario,
            scenario_text=self.prompts.scenarios[language][scenario],
            user=user,
            assistant_voice=assistant,
            turns=turns,
        )

    # Top-up (topup.py): extra dialogues past num_dialogues, each planned into a given cell of labels.
    def candidate_cells(self) -> list[Cell]:
        """Every label combination the config gives weight to and the pool and scenarios can serve."""
        cells = []
        for language, weight in self.config.languages.items():
            if weight <= 0:
                continue
            dist = self.config.distributions.for_language(language)
            if dist.emotion_scenario is not None:
                emotions = [e for e, row in dist.emotion_scenario.items() if any(w > 0 for w in row.values())]
            else:
                emotions = [e for e, w in dist.user_emotion.items() if w > 0]
            lengths = [int(n) for n, w in dist.exchanges.items() if w > 0]
            for gender, age_group in self._gender_age_cells(dist):
                cells += [Cell(language, str(gender), str(age_group), str(e), n) for e in emotions for n in lengths]
        return cells

    def extra_spec(self, index: int, cell: Cell) -> DialogueSpec:
        """Spec of top-up dialogue `index` (>= num_dialogues): a pure function of (seed, index, cell)."""
        dist = self.config.distributions.for_language(cell.language)
        if dist.emotion_scenario is not None:
            fitting = {sc: w for sc, w in dist.emotion_scenario[cell.emotion].items() if w > 0}
        elif dist.scenarios is not None:
            table = self.fitted_emotion_scenario(cell.language, dist)
            fitting = {sc: w for (e, sc), w in table.items() if e == cell.emotion}
        else:
            fitting = self.scenario_weights(cell.language, dist, cell.emotion)
        scenario = weighted_choice(random.Random(f"{self.config.seed}:scenario:{index}"), dict(sorted(fitting.items())))
        return self._build(index, cell, str(scenario))

    def add_extra_chunk(self, cells: dict[int, Cell]) -> int:
        """Register a chunk of top-up dialogues (index -> cell); returns its chunk index."""
        self.extra_chunks.append(cells)
        return self.num_chunks - 1

    @property
    def base_chunks(self) -> int:
        return -(-self.config.num_dialogues // self.config.chunk_size)

    def chunk(self, chunk_index: int) -> list[DialogueSpec]:
        if chunk_index >= self.base_chunks:
            return [self.extra_spec(i, cell) for i, cell in self.extra_chunks[chunk_index - self.base_chunks].items()]
        start = chunk_index * self.config.chunk_size
        stop = min(start + self.config.chunk_size, self.config.num_dialogues)
        return [self.spec(i) for i in range(start, stop)]

    def chunk_indices(self, chunk_index: int) -> list[int]:
        if chunk_index >= self.base_chunks:
            return list(self.extra_chunks[chunk_index - self.base_chunks])
        start = chunk_index * self.config.chunk_size
        return list(range(start, min(start + self.config.chunk_size, self.config.num_dialogues)))

    @property
    def num_dialogues(self) -> int:
        """Planned dialogues: the configured ones and the top-up extras registered so far."""
        return self.config.num_dialogues + sum(len(cells) for cells in self.extra_chunks)

    @property
    def num_chunks(self) -> int:
        return self.base_chunks + len(self.extra_chunks)
