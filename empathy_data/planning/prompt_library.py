"""The prompts folder: label descriptions, scenario lists per language, and Jinja2 templates.

Label descriptions come from `vocabulary.yaml`; a `vocabulary.<language>.yaml` beside it replaces
them for prompts in that language, so a Chinese prompt does not carry English label descriptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import yaml

from empathy_data.core.errors import ConfigError
from empathy_data.core.hashing import tree_digest
from empathy_data.core.labels import AGE_GROUPS, EMOTIONS, GENDERS, RESPONSE_STYLES


@dataclass(frozen=True)
class Vocabulary:
    emotions: dict[str, str]
    response_styles: dict[str, str]


@dataclass(frozen=True)
class PromptLibrary:
    root: Path
    vocabulary: Vocabulary
    scenarios: dict[str, dict[str, str]]  # language -> id -> description
    templates: dict[str, jinja2.Template]  # "system.en" -> template
    content_hash: str
    # the closed-set judge's templates (judge_labels.<lang>.j2), hashed apart: they key a build only in that mode
    judge_labels_hash: str = ""
    # the reply-to-a-recording templates (reply.<lang>.j2), hashed apart: they key a build only with `ingest:`
    reply_hash: str = ""
    # the contrast-group templates (contrast.<lang>.j2), hashed apart: they key a build only with `contrast:`
    contrast_hash: str = ""
    # the script judge's hand-labelled cases (judge_cases.yaml): they key a build only where the judge is measured
    judge_cases_hash: str = ""
    localized: dict[str, Vocabulary] = field(default_factory=dict)  # language -> its own descriptions
    # language -> id -> the user emotions the scenario fits (an entry without `emotions:` fits every emotion)
    scenario_emotions: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    # language -> id -> the users it fits: age groups (`ages:`) and genders (`genders:`); absent: all of them
    scenario_ages: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    scenario_genders: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

    def fits(self, language: str, scenario: str, gender: str | None, age_group: str | None) -> bool:
        """Whether the scenario can be the story of a user of this gender and age group (None: any)."""
        ages, genders = self.scenario_ages[language], self.scenario_genders[language]
        return (age_group is None or age_group in ages.get(scenario, AGE_GROUPS)) and (
            gender is None or gender in genders.get(scenario, GENDERS)
        )

    def template(self, kind: str, language: str) -> jinja2.Template:
        return self.templates[f"{kind}.{language}"]

    def vocabulary_for(self, language: str) -> Vocabulary:
        return self.localized.get(language, self.vocabulary)


def _read_yaml_mapping(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(str(path), f"unreadable ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(str(path), "expected a non-empty mapping")
    return data


def _load_vocabulary(path: Path) -> Vocabulary:
    vocab = _read_yaml_mapping(path)
    emotions = vocab.get("emotions") or {}
    styles = vocab.get("response_styles") or {}
    for key, labels, table in (
        ("emotions", EMOTIONS, emotions),
        ("response_styles", RESPONSE_STYLES, styles),
    ):
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {key}", "expected a mapping of label to description")
        missing = [label for label in labels if not str(table.get(label, "")).strip()]
        if missing:
            raise ConfigError(f"{path}: {key}", f"no description for {missing}")
        unknown = sorted(set(map(str, table)) - set(labels))
        if unknown:
            raise ConfigError(f"{path}: {key}", f"unknown labels {unknown}")
    return Vocabulary(
        emotions={str(k): str(v) for k, v in emotions.items()},
        response_styles={str(k): str(v) for k, v in styles.items()},
    )


@dataclass(frozen=True)
class ScenarioList:
    texts: dict[str, str]
    emotions: dict[str, tuple[str, ...]]
    ages: dict[str, tuple[str, ...]]
    genders: dict[str, tuple[str, ...]]


def _labels(where: str, entry: dict, key: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    values = entry.get(key) or list(allowed)
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}.{key}", f"expected a list of {what}")
    unknown = sorted(str(v) for v in values if v not in allowed)
    if unknown:
        raise ConfigError(f"{where}.{key}", f"unknown {what} {unknown}; allowed: {list(allowed)}")
    return tuple(str(v) for v in values)


def _load_scenarios(path: Path) -> ScenarioList:
    """`id: description`, or `id: {text: description, emotions: [sad, fearful], ages: [adult, elderly],
    genders: [female]}` (a list left out fits every label)."""
    found = ScenarioList({}, {}, {}, {})
    for key, entry in _read_yaml_mapping(path).items():
        where, key = f"{path}: {key}", str(key)
        if isinstance(entry, dict):
            unknown_keys = sorted(set(entry) - {"text", "emotions", "ages", "genders"})
            if unknown_keys or not str(entry.get("text", "")).strip():
                raise ConfigError(where, "expected {text: description, emotions: [labels], ages: [...], genders: [...]}")
            found.texts[key] = str(entry["text"])
            found.emotions[key] = _labels(where, entry, "emotions", EMOTIONS, "emotion(s)")
            found.ages[key] = _labels(where, entry, "ages", AGE_GROUPS, "age group(s)")
            found.genders[key] = _labels(where, entry, "genders", GENDERS, "gender(s)")
        else:
            found.texts[key], found.emotions[key] = str(entry), EMOTIONS
            found.ages[key], found.genders[key] = AGE_GROUPS, GENDERS
    return found


def _template(env: jinja2.Environment, path: Path) -> jinja2.Template:
    try:
        return env.from_string(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"unreadable template ({exc.__class__.__name__})") from None
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"{path}:{exc.lineno}", f"template syntax error: {exc.message}") from None


def load_prompts(root: Path, languages: list[str]) -> PromptLibrary:
    vocab_path = root / "vocabulary.yaml"
    vocabulary = _load_vocabulary(vocab_path)
    localized: dict[str, Vocabulary] = {}
    files = [vocab_path]
    for language in languages:
        path = root / f"vocabulary.{language}.yaml"
        if path.is_file():
            localized[language] = _load_vocabulary(path)
            files.append(path)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)
    scenarios: dict[str, dict[str, str]] = {}
    scenario_emotions: dict[str, dict[str, tuple[str, ...]]] = {}
    scenario_ages: dict[str, dict[str, tuple[str, ...]]] = {}
    scenario_genders: dict[str, dict[str, tuple[str, ...]]] = {}
    templates: dict[str, jinja2.Template] = {}
    label_files: list[Path] = []
    reply_files: list[Path] = []
    contrast_files: list[Path] = []
    for language in languages:
        scen_path = root / "scenarios" / f"{language}.yaml"
        if not scen_path.is_file():
            raise ConfigError(str(scen_path), f"no scenario list for language {language!r}")
        listed = _load_scenarios(scen_path)
        scenarios[language], scenario_emotions[language] = listed.texts, listed.emotions
        scenario_ages[language], scenario_genders[language] = listed.ages, listed.genders
        files.append(scen_path)
        for kind in ("system", "user", "judge"):
            path = root / "templates" / f"{kind}.{language}.j2"
            if kind == "judge" and not path.is_file():  # needed only where script.judge is on (load_config)
                continue
            templates[f"{kind}.{language}"] = _template(env, path)
            files.append(path)
        for kind, kind_files in (("judge_labels", label_files), ("reply", reply_files), ("contrast", contrast_files)):
            path = root / "templates" / f"{kind}.{language}.j2"
            if path.is_file():  # needed only by the closed-set judge / a build with real queries
                templates[f"{kind}.{language}"] = _template(env, path)
                kind_files.append(path)
    return PromptLibrary(
        root=root,
        vocabulary=vocabulary,
        scenarios=scenarios,
        templates=templates,
        content_hash=tree_digest(files),
        judge_labels_hash=tree_digest(label_files) if label_files else "",
        reply_hash=tree_digest(reply_files) if reply_files else "",
        contrast_hash=tree_digest(contrast_files) if contrast_files else "",
        judge_cases_hash=tree_digest([cases]) if (cases := root / "judge_cases.yaml").is_file() else "",
        localized=localized,
        scenario_emotions=scenario_emotions,
        scenario_ages=scenario_ages,
        scenario_genders=scenario_genders,
    )
