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
from empathy_data.core.labels import AGE_GROUPS, DEFAULT_STYLE_BY_EMOTION, GENDERS
from empathy_data.planning.allocation import BalancedSequence, Draw, whole_joint
from empathy_data.planning.prompt_library import PromptLibrary
from empathy_data.planning.real_queries import RealCorpus
from empathy_data.planning.speakers import SpeakerPool
from empathy_data.records.schema import ContrastRole, ContrastVariant, DialogueSpec, TurnPlan

# Bumped when the way labels are allocated changes, so an old plan is never mixed with a new one.
ALLOCATION_VERSION = 5  # 5: a scenario is drawn among those that fit the user's age group and gender too


@cache
def _turn(role: str, emotion: str | None, style: str | None) -> TurnPlan:
    return TurnPlan(role=role, emotion=emotion, response_style=style)  # frozen: one object per kind is enough


def weighted_choice(rng: random.Random, weights: dict) -> object:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys], k=1)[0]


def joint_cells(table: dict[str, dict[str, float]]) -> dict[tuple[str, str], float]:
    return {(a, b): w for a, row in table.items() for b, w in row.items() if w > 0}


# Margins of an (emotion, scenario, gender, age_group) cell, kept within one item on every prefix (the first
# two always, as for the emotion x scenario table alone; the users' too wherever a block order allows it).
PROJECTIONS = tuple((lambda cell, i=i: (i, cell[i])) for i in range(4))  # type: ignore[index]


def _first(cell: Hashable) -> Hashable:
    return ("first", cell[0])  # type: ignore[index]


def _second(cell: Hashable) -> Hashable:
    return ("second", cell[1])  # type: ignore[index]


def key_order(value: Any) -> Any:
    """The order of every mapping's keys in `value`, as nested lists (hashing sorts mapping keys)."""
    if isinstance(value, dict):
        return [[str(k), key_order(v)] for k, v in value.items()]
    if isinstance(value, list | tuple):
        return [key_order(v) for v in value]
    return None


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
    emotion and the user (balanced over the dialogues of that emotion), later exchanges' emotions follow
    the arc. With a configured scenario mix, emotion, scenario and the user labels its scenarios restrict
    are drawn jointly from one table with every configured mix as a margin (fitted_with_users), balanced
    over the language's dialogues."""

    config: BuildConfig
    prompts: PromptLibrary
    pool: SpeakerPool
    # Real recorded queries (config.ingest): a balanced `ingest.mix` share of the dialogues is planned on them.
    real: RealCorpus | None = None
    _sequences: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    # top-up chunks after the configured ones: each maps dialogue index -> its cell
    extra_chunks: list[dict[int, Cell]] = field(default_factory=list, init=False, repr=False, compare=False)
    extra_passes: int = field(default=0, init=False, repr=False, compare=False)
    _fitted: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    # what spec() works out once per language (sequences, mixes), by key: it runs for every dialogue
    _resolved: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.config.ingest is None) != (self.real is None):
            raise ValueError("a planner takes the ingested corpus exactly when the config has an ingest block")
        if self.config.contrast is not None:
            self._check_contrast()
        if self.real is not None and not self._real_weights():
            where = ", ".join(str(root) for root in self.real.roots.values())
            raise ConfigError(f"ingest.path: {where}", "none of its queries has a configured language and a user "
                              f"emotion with weight (it holds {self.real.by_emotion()})")  # fmt: skip
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
            try:
                self.fitted_with_users(language, dist)
            except ValueError as exc:
                raise ConfigError(f"{where}.emotion_scenario", f"cannot hold with the users' gender and age mixes "
                                  f"({file} lists whom each scenario fits): {exc}") from None  # fmt: skip
            return
        if dist.scenarios is not None:
            unknown = sorted(set(dist.scenarios) - set(known))
            if unknown:
                raise ConfigError(f"{where}.scenarios", f"unknown scenario(s) for {language}: {unknown}")
        for emotion, weight in dist.user_emotion.items():
            if weight > 0 and not self.scenario_weights(language, dist, emotion):
                raise ConfigError(f"{where}.user_emotion.{emotion}", f"no scenario with weight in {file} fits it")
            for gender, age_group in self._gender_age_cells(dist) if weight > 0 else ():
                if not self.scenario_weights(language, dist, emotion, gender, age_group):
                    raise ConfigError(f"{where}.user_emotion.{emotion}", f"no scenario with weight in {file} fits both "
                                      f"it and {age_group} {gender} users (their `ages:` and `genders:`)")  # fmt: skip
        if dist.scenarios is not None:
            try:
                self.fitted_with_users(language, dist)
            except ValueError as exc:
                raise ConfigError(f"{where}.scenarios", f"cannot hold with user_emotion and the users' gender and age "
                                  f"mixes ({file} lists which emotions and users each scenario fits): {exc}") from None  # fmt: skip

    def user_dims(self, language: str, dist: Distributions) -> tuple[str, ...]:
        """The user labels a configured scenario mix must be drawn with: those some of its scenarios restrict
        (a joint gender x age table goes whole). The others keep their own streams, as without a mix."""
        if dist.emotion_scenario is not None:
            mixed = {s for _, s in joint_cells(dist.emotion_scenario)}
        else:
            mixed = {s for s, w in (dist.scenarios or {}).items() if w > 0}
        dims = tuple(dim for dim, lists, every in (("gender", self.prompts.scenario_genders, GENDERS),
                                                   ("age_group", self.prompts.scenario_ages, AGE_GROUPS))
                     if any(set(lists[language].get(s, every)) != set(every) for s in mixed))  # fmt: skip
        return ("gender", "age_group") if dims and dist.gender_age is not None else dims

    def fitted_with_users(self, language: str, dist: Distributions) -> dict[tuple[str, ...], float]:
        """(emotion, scenario, *the user_dims values) -> weight, for a configured scenario mix: every configured
        mix as a margin in whole counts (allocation.whole_joint), over the cells whose scenario fits both the
        emotion and the user. Emotion and user are crossed as the config crosses them (independently)."""
        if language in self._fitted:  # a language's distributions are fixed for the planner's life
            return self._fitted[language]
        dims = self.user_dims(language, dist)
        users = self._user_weights(dist, dims)

        def fits_user(scenario: str, user: tuple[str, ...]) -> bool:
            labels = dict(zip(dims, user, strict=True))
            return self.prompts.fits(language, scenario, labels.get("gender"), labels.get("age_group"))

        emotions_of = self.prompts.scenario_emotions[language]
        if dist.emotion_scenario is not None:
            rows = dict(joint_cells(dist.emotion_scenario))
            allowed = {((e, s), u) for e, s in rows for u in users if fits_user(s, u)}
            table = whole_joint(rows, users, allowed)
            self._fitted[language] = {(e, s, *u): w for ((e, s), u), w in table.items()}
        else:
            rows = {(e, *u): ew * uw for e, ew in dist.user_emotion.items() if ew > 0 for u, uw in users.items()}
            allowed = {(r, s) for r in rows for s, emotions in emotions_of.items()
                       if r[0] in emotions and fits_user(s, r[1:])}  # fmt: skip
            table = whole_joint(rows, dist.scenarios or {}, allowed)
            self._fitted[language] = {(r[0], s, *r[1:]): w for (r, s), w in table.items()}
        return self._fitted[language]

    @staticmethod
    def _user_weights(dist: Distributions, dims: tuple[str, ...]) -> dict[tuple[str, ...], float]:
        if dims == ("gender", "age_group"):
            if dist.gender_age is not None:
                return dict(joint_cells(dist.gender_age))
            return {(g, a): gw * aw for g, gw in dist.gender.items() for a, aw in dist.age_group.items() if gw > 0 and aw > 0}
        if dims:
            return {(v,): w for v, w in getattr(dist, dims[0]).items() if w > 0}
        return {(): 1.0}

    def scenario_weights(self, language: str, dist: Distributions, emotion: str, gender: str | None = None,
                         age_group: str | None = None) -> dict[str, float]:  # fmt: skip
        """The scenarios that fit the user emotion (and, given, the user's gender and age group), weighted."""
        fits = {s for s, emotions in self.prompts.scenario_emotions[language].items() if emotion in emotions}
        if gender is not None and age_group is not None:
            fits = {s for s in fits if self.prompts.fits(language, s, gender, age_group)}
        weights = dist.scenarios if dist.scenarios is not None else dict.fromkeys(self.prompts.scenarios[language], 1.0)
        return {s: w for s, w in weights.items() if s in fits and w > 0}

    @staticmethod
    def _gender_age_cells(dist: Distributions) -> list[tuple[str, str]]:
        return list(Planner._user_weights(dist, ("gender", "age_group")))

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
                "scenario_ages": self.prompts.scenario_ages,
                "scenario_genders": self.prompts.scenario_genders,
                "allocation": ALLOCATION_VERSION,
                # the balanced sequences follow each mix's weights (and the scenario lists) in the order written,
                # which the sorted hash above cannot see: the same mixes in another order plan other dialogues
                "mix_order": key_order({"languages": self.config.languages, "scenarios": self.prompts.scenarios,
                                        "distributions": self.config.distributions.model_dump(mode="json")}),  # fmt: skip
                # only with an ingest block: a plan without one keeps its key
                **({"ingest": {"mix": self.config.ingest.mix, "queries": self.real.content_hash}}
                   if self.config.ingest is not None and self.real is not None else {}),
                **({"contrast": self.config.contrast.model_dump(mode="json")} if self.config.contrast is not None else {}),
            }
        )  # fmt: skip

    def dialogue_id(self, index: int) -> str:
        # digest([seed, index], 12) without the JSON encoder: the same text, a quarter of a spec's time less
        return "dlg-" + hashlib.sha256(f"[{int(self.config.seed)},{int(index)}]".encode()).hexdigest()[:12]

    def _sequence(self, name: str, scope: str, weights: dict, groups: tuple = (), essential: int | None = None
                  ) -> BalancedSequence:  # fmt: skip
        key = (name, scope, tuple(sorted((str(k), v) for k, v in weights.items())))
        if key not in self._sequences:
            self._sequences[key] = BalancedSequence(weights, f"{self.config.seed}:{name}:{scope}", groups, essential)
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

    def _scenarios(self, language: str, emotion: str, gender: str, age_group: str) -> BalancedSequence:
        """Scenarios that fit the emotion and the user, balanced over the dialogues of that emotion."""
        dist = self.config.distributions.for_language(language)
        return self._resolve(("scenario", language, emotion, gender, age_group), lambda: self._sequence(
            "scenario", f"{language}:{emotion}:{gender}:{age_group}",
            self.scenario_weights(language, dist, emotion, gender, age_group)))  # fmt: skip

    def spec(self, index: int) -> DialogueSpec:
        if self.config.contrast is not None and (grouped := self._contrast_spec(index)) is not None:
            return grouped
        return self._base_spec(index)

    def _emotion_weights(self, language: str) -> dict[str, float]:
        """The language's user-emotion mix: `user_emotion`, or the emotion margins of `emotion_scenario`."""
        dist = self.config.distributions.for_language(language)
        if dist.emotion_scenario is not None:
            return {e: sum(row.values()) for e, row in dist.emotion_scenario.items()}
        return dict(dist.user_emotion)

    def _configured_emotions(self, language: str) -> list[str]:
        return sorted(e for e, w in self._emotion_weights(language).items() if w > 0)

    def _check_contrast(self) -> None:
        contrast = self.config.contrast
        assert contrast is not None
        for language in self.config.languages:
            if contrast.by in ("emotion", "both") and len(self._configured_emotions(language)) < contrast.size:
                raise ConfigError("contrast.size", f"{contrast.size} emotions per group, but {language} has only "
                                  f"{self._configured_emotions(language)} with weight")  # fmt: skip
            cells = {(s.gender, s.age_group) for s in self.pool.matching(language)}
            if contrast.by in ("speaker", "both") and len(cells) < contrast.size:
                raise ConfigError("contrast.size", f"{contrast.size} voices of other genders and ages per group, but "
                                  f"{self.pool.path} has {len(cells)} such {language} cells")  # fmt: skip

    def _contrast_spec(self, index: int) -> DialogueSpec | None:
        """Member `index % size` of its contrast group, or None when the index is in no group: a trailing
        partial group, a group the share leaves out, or one whose first member is a real recording."""
        contrast = self.config.contrast
        assert contrast is not None
        group, member = divmod(index, contrast.size)
        if (group + 1) * contrast.size > self.config.num_dialogues:
            return None
        if contrast.share < 1.0:
            chosen = self._resolve(("contrast_share",), lambda: self._sequence(
                "contrast", "*", {"group": contrast.share, "alone": 1.0 - contrast.share}))  # fmt: skip
            if chosen.draw(group).value != "group":
                return None
        anchor = self._base_spec(group * contrast.size)
        if anchor.real_query is not None:
            return None
        rng = random.Random(f"{self.config.seed}:contrast:{group}")
        language, scenario = anchor.language, anchor.scenario
        first = str(anchor.turns[0].emotion)
        if contrast.by in ("emotion", "both"):
            fits = set(self.prompts.scenario_emotions[language].get(scenario, ()))
            others = [e for e in self._configured_emotions(language) if e != first]
            rng.shuffle(others)  # the emotions the scenario fits first
            emotions = [first, *sorted(others, key=lambda e: e not in fits)[: contrast.size - 1]]
        else:
            emotions = [first] * contrast.size
        if contrast.by in ("speaker", "both"):
            cell = (anchor.user.gender, anchor.user.age_group)
            cells = sorted({(s.gender, s.age_group) for s in self.pool.matching(language)} - {cell})
            rng.shuffle(cells)  # the users the scenario fits first
            cells = sorted(cells, key=lambda c: not self.prompts.fits(language, scenario, c[0], c[1]))
            voices = [cell, *cells[: contrast.size - 1]]
        else:
            voices = [(anchor.user.gender, anchor.user.age_group)] * contrast.size
        variants = [ContrastVariant(gender=g, age_group=a, emotion=e) for (g, a), e in zip(voices, emotions, strict=True)]
        role = ContrastRole(
            group_id="grp-" + digest(["contrast", self.config.seed, group], 12), member=member, by=contrast.by,
            variants=variants, anchor_speaker=anchor.user.id,
        )  # fmt: skip
        if member == 0:
            return anchor.model_copy(update={"turns": anchor.turns[:2], "contrast": role})
        mine = variants[member]
        member_rng = random.Random(f"{self.config.seed}:{index}")
        user = anchor.user
        if contrast.by != "emotion":
            user = self.pool.draw_user(member_rng, language, mine.gender, mine.age_group)
        assistant = anchor.assistant_voice
        if assistant.id == user.id:
            assistant = self.pool.draw_assistant(member_rng, language, user)
        style = self._draw_style(member_rng, language, mine.emotion)
        return anchor.model_copy(update={
            "dialogue_id": self.dialogue_id(index), "index": index, "user": user, "assistant_voice": assistant,
            "turns": [_turn("user", mine.emotion, None), _turn("assistant", None, style)], "contrast": role,
        })  # fmt: skip

    def _base_spec(self, index: int) -> DialogueSpec:
        if self.real is not None:
            source = self._resolve(("source",), lambda: self._sequence(
                "source", "*", {"real": self.config.ingest.mix, "synthetic": 1.0 - self.config.ingest.mix}))  # type: ignore[union-attr]  # fmt: skip
            drawn = source.draw(index)
            if drawn.value == "real":
                return self._real_spec(index, drawn.rank)
        return self._synthetic_spec(index)

    def _real_weights(self) -> dict[tuple[str, str], float]:
        """(language, emotion) -> weight for real dialogues: the configured language and user-emotion mixes
        over the cells the ingested corpus has recordings in."""
        assert self.real is not None
        have = self.real.cells()
        weights = {}
        for language, language_weight in self.config.languages.items():
            for emotion, weight in self._emotion_weights(language).items():
                if language_weight > 0 and weight > 0 and (language, emotion) in have:
                    weights[(language, emotion)] = language_weight * weight
        return weights

    def _real_spec(self, index: int, rank: int) -> DialogueSpec:
        """The rank-th real dialogue: a (language, emotion) cell balanced over the real dialogues, the cell's
        next recording as the user's one turn (its speaker's labels are the recording's), a planned reply."""
        assert self.real is not None
        cells = self._resolve(("real_cells",), lambda: self._sequence("real_cell", "*", self._real_weights()))
        drawn = cells.draw(rank)
        language, emotion = drawn.value  # type: ignore[misc]
        item = self.real.take(language, emotion, drawn.rank)
        rng = random.Random(f"{self.config.seed}:{index}")
        assistant = self.pool.draw_assistant(rng, language, item.speaker)
        style = self._draw_style(rng, language, emotion)
        return DialogueSpec(
            dialogue_id=self.dialogue_id(index), index=index, language=language, scenario="recorded",
            scenario_text=item.query.transcript, user=item.speaker, assistant_voice=assistant,
            turns=[_turn("user", emotion, None), _turn("assistant", None, style)], real_query=item.query,
        )  # fmt: skip

    def _synthetic_spec(self, index: int) -> DialogueSpec:
        cfg = self.config
        language_draw = self._stream("language", "*", lambda: cfg.languages, ())[0].draw(index)
        language, in_language = str(language_draw.value), language_draw.rank
        dist = cfg.distributions.for_language(language)

        def draw(name: str, weights: Callable[[], dict], *labels: str, groups: tuple = ()) -> Draw:
            sequence, within = self._stream(name, language, weights, labels, groups)
            return sequence.draw(in_language if within else index)

        if dist.emotion_scenario is not None or dist.scenarios is not None:
            # one joint draw: the scenario mix, the emotion and the users' mixes, and which scenario fits whom
            dims = self._resolve(("user_dims", language), lambda: self.user_dims(language, dist))
            sequence = self._resolve(("fitted_with_users", language), lambda: self._sequence(
                "fitted_with_users", language, self.fitted_with_users(language, dist), PROJECTIONS[: 2 + len(dims)], 2))  # fmt: skip
            emotion, scenario, *user = sequence.draw(in_language).value  # type: ignore[misc]
            labels = dict(zip(dims, user, strict=True))
            gender = labels.get("gender") or draw("gender", lambda: dist.gender, "gender", "gender_age").value
            age_group = labels.get("age_group") or draw("age_group", lambda: dist.age_group, "age_group", "gender_age").value
            num_exchanges = int(draw("exchanges", lambda: dist.exchanges, "exchanges").value)
            return self._build(index, Cell(language, str(gender), str(age_group), emotion, num_exchanges), scenario)
        if dist.gender_age is not None:
            gender, age_group = draw("gender_age", lambda: joint_cells(dist.gender_age), "gender_age", "gender",
                                     "age_group", groups=(_first, _second)).value  # fmt: skip
        else:
            gender = draw("gender", lambda: dist.gender, "gender", "gender_age").value
            age_group = draw("age_group", lambda: dist.age_group, "age_group", "gender_age").value
        emotion_draw = draw("user_emotion", lambda: dist.user_emotion, "user_emotion", "emotion_scenario")
        emotion = emotion_draw.value
        # among the scenarios that fit the emotion and the user, balanced over the dialogues of this emotion
        scenario = self._scenarios(language, str(emotion), str(gender), str(age_group)).draw(emotion_draw.rank).value
        num_exchanges = int(draw("exchanges", lambda: dist.exchanges, "exchanges").value)
        return self._build(index, Cell(language, str(gender), str(age_group), str(emotion), num_exchanges), str(scenario))

    def _choices(self, kind: str, language: str, emotion: str, weights: dict) -> tuple[list, list[float]]:
        """(values, cumulative weights) of a per-emotion mix, for rng.choices (same draws as weights=)."""
        return self._resolve((kind, language, emotion), lambda: (list(weights), list(accumulate(weights.values()))))

    def _draw_style(self, rng: random.Random, language: str, emotion: str) -> str:
        """A reply style for a user turn in `emotion`: the language's style mix for it, else the default one."""
        found = self._resolved.get(("style", language, emotion))  # drawn for every exchange: no closure
        if found is None:
            styles = self.config.distributions.for_language(language).response_style or {}
            found = self._choices("style", language, emotion, styles.get(emotion) or DEFAULT_STYLE_BY_EMOTION[emotion])
        values, cumulative = found
        return str(rng.choices(values, cum_weights=cumulative)[0])

    def _build(self, index: int, cell: Cell, scenario: str) -> DialogueSpec:
        cfg = self.config
        language = cell.language
        dist = cfg.distributions.for_language(language)
        rng = random.Random(f"{cfg.seed}:{index}")
        user = self.pool.draw_user(rng, language, cell.gender, cell.age_group)
        assistant = self.pool.draw_assistant(rng, language, user)
        arc = arc_matrix(dist.emotion_arc)
        turns: list[TurnPlan] = []
        current = cell.emotion
        for k in range(cell.exchanges):
            if k and current in arc:
                values, cumulative = self._choices("arc", language, current, arc[current])
                current = str(rng.choices(values, cum_weights=cumulative)[0])
            style = self._draw_style(rng, language, current)
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
            emotions = [e for e, w in self._emotion_weights(language).items() if w > 0]
            lengths = [int(n) for n, w in dist.exchanges.items() if w > 0]
            for gender, age_group in self._gender_age_cells(dist):
                cells += [Cell(language, str(gender), str(age_group), str(e), n) for e in emotions for n in lengths]
        return cells

    def extra_spec(self, index: int, cell: Cell) -> DialogueSpec:
        """Spec of top-up dialogue `index` (>= num_dialogues): a pure function of (seed, index, cell)."""
        dist = self.config.distributions.for_language(cell.language)
        if dist.emotion_scenario is not None or dist.scenarios is not None:
            labels = {"gender": cell.gender, "age_group": cell.age_group}
            user = tuple(labels[dim] for dim in self.user_dims(cell.language, dist))
            table = self.fitted_with_users(cell.language, dist)
            fitting = {c[1]: w for c, w in table.items() if c[0] == cell.emotion and tuple(c[2:]) == user}
        else:
            fitting = self.scenario_weights(cell.language, dist, cell.emotion, cell.gender, cell.age_group)
        scenario = weighted_choice(random.Random(f"{self.config.seed}:scenario:{index}"), dict(sorted(fitting.items())))
        return self._build(index, cell, str(scenario))

    def add_extra_pass(self, chunks: list[dict[int, Cell]]) -> list[int]:
        """Register one top-up pass: its chunks of extra dialogues (index -> cell). The chunk list is
        swapped in whole, so threads reading it never see it shrink or half-appended. Returns the new
        chunk indices."""
        before = self.num_chunks
        self.extra_chunks = [*self.extra_chunks, *chunks]
        self.extra_passes += 1
        return list(range(before, self.num_chunks))

    def chunk_where(self, chunk_index: int) -> dict[str, Any]:
        """What a chunk's cache key says about its dialogues: their index range, or a top-up chunk's
        indices and cells."""
        if chunk_index >= self.base_chunks:
            cells = self.extra_chunks[chunk_index - self.base_chunks]
            return {"topup": [[i, *vars(cell).values()] for i, cell in cells.items()]}
        indices = self.chunk_indices(chunk_index)
        return {"range": [indices[0], indices[-1] + 1]}

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
