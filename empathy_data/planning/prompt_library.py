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
from empathy_data.core.labels import EMOTIONS, RESPONSE_STYLES


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
    localized: dict[str, Vocabulary] = field(default_factory=dict)  # language -> its own descriptions
    # language -> id -> the user emotions the scenario fits (an entry without `emotions:` fits every emotion)
    scenario_emotions: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

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


def _load_scenarios(path: Path) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """`id: description`, or `id: {text: description, emotions: [sad, fearful]}`."""
    texts: dict[str, str] = {}
    emotions: dict[str, tuple[str, ...]] = {}
    for key, entry in _read_yaml_mapping(path).items():
        where = f"{path}: {key}"
        if isinstance(entry, dict):
            unknown_keys = sorted(set(entry) - {"text", "emotions"})
            if unknown_keys or not str(entry.get("text", "")).strip():
                raise ConfigError(where, "expected {text: description, emotions: [labels]}")
            fits = entry.get("emotions") or list(EMOTIONS)
            if not isinstance(fits, list) or not fits:
                raise ConfigError(f"{where}.emotions", "expected a list of user emotions")
            unknown = sorted(str(e) for e in fits if e not in EMOTIONS)
            if unknown:
                raise ConfigError(f"{where}.emotions", f"unknown emotion(s) {unknown}; allowed: {list(EMOTIONS)}")
            texts[str(key)], emotions[str(key)] = str(entry["text"]), tuple(str(e) for e in fits)
        else:
            texts[str(key)], emotions[str(key)] = str(entry), EMOTIONS
    return texts, emotions


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
    templates: dict[str, jinja2.Template] = {}
    for language in languages:
        scen_path = root / "scenarios" / f"{language}.yaml"
        if not scen_path.is_file():
            raise ConfigError(str(scen_path), f"no scenario list for language {language!r}")
        scenarios[language], scenario_emotions[language] = _load_scenarios(scen_path)
        files.append(scen_path)
        for kind in ("system", "user", "judge"):
            path = root / "templates" / f"{kind}.{language}.j2"
            if kind == "judge" and not path.is_file():  # needed only where script.judge is on (load_config)
                continue
            templates[f"{kind}.{language}"] = _template(env, path)
            files.append(path)
    return PromptLibrary(
        root=root,
        vocabulary=vocabulary,
        scenarios=scenarios,
        templates=templates,
        content_hash=tree_digest(files),
        localized=localized,
        scenario_emotions=scenario_emotions,
    )
