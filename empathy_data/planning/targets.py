"""The label mix a config asks for, per dialogue: what the card and the report compare the plan against."""

from __future__ import annotations

from collections import defaultdict

from empathy_data.config.model import BuildConfig, Distributions

# dialogue-level labels: the plan allocates each of these exactly (user_emotion: the first exchange's)
TARGET_LABELS = ("language", "user_emotion", "user_gender", "user_age_group", "exchanges")


def _language_marginals(dist: Distributions) -> dict[str, dict[str, float]]:
    if dist.gender_age is not None:
        gender: dict[str, float] = defaultdict(float)
        age: dict[str, float] = defaultdict(float)
        for g, row in dist.gender_age.items():
            for a, w in row.items():
                gender[g] += w
                age[a] += w
    else:
        gender, age = dict(dist.gender), dict(dist.age_group)
    if dist.emotion_scenario is not None:
        emotion = {e: sum(row.values()) for e, row in dist.emotion_scenario.items()}
    else:
        emotion = dict(dist.user_emotion)
    return {
        "user_emotion": emotion,
        "user_gender": dict(gender),
        "user_age_group": dict(age),
        "exchanges": {str(k): v for k, v in dist.exchanges.items()},
    }


def target_shares(config: BuildConfig) -> dict[str, dict[str, float]]:
    """label -> value -> share of dialogues, languages' overrides weighted by each language's share."""
    shares: dict[str, dict[str, float]] = {"language": dict(config.languages)}
    for language, weight in config.languages.items():
        for label, values in _language_marginals(config.distributions.for_language(language)).items():
            table = shares.setdefault(label, {})
            for value, share in values.items():
                if share > 0:
                    table[value] = table.get(value, 0.0) + weight * share
    return {label: {v: round(s, 6) for v, s in sorted(values.items())} for label, values in shares.items()}
