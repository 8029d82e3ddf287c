"""Speech emotion classifiers as the filter's emotion check: transformers audio-classification, emotion2vec.

A classifier's labels are mapped to ours (config `label_map`); probability mass of labels that map to the
same emotion is summed, unmapped labels are ignored. A turn passes when its target emotion is the top
prediction or gets at least `min_prob`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from empathy_data.config.model import ClassifierEmotion
from empathy_data.core.audio import resample
from empathy_data.core.errors import BackendUnavailable, raise_if_infrastructure
from empathy_data.stages.filter.base import EmotionItem, EmotionResult, check_each

CLASSIFIER_RATE = 16000
# emotion2vec_plus labels, in its output order, are "中文/english"; map the English part.
EMOTION2VEC_LABELS = {
    "angry": "angry",
    "disgusted": "disgusted",
    "fearful": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "surprised": "surprised",
}


def map_scores(raw: dict[str, float], label_map: dict[str, str]) -> dict[str, float]:
    scores: dict[str, float] = {}
    for label, score in raw.items():
        ours = label_map.get(label)
        if ours is not None:
            scores[ours] = scores.get(ours, 0.0) + float(score)
    return scores


class ClassifierCheck:
    """Turns per-label scores into a verdict; subclasses implement `raw_scores`."""

    def __init__(self, config: ClassifierEmotion, label_map: dict[str, str]):
        self.config = config
        self.label_map = label_map

    @property
    def identity(self) -> dict[str, Any]:
        identity = {"backend": self.config.backend, "model": self.config.model, "min_prob": self.config.min_prob}
        # Padding a batch can move a model's scores (those without an attention mask see the padding), so
        # the filter key (backends/builtin.py) keeps a larger batch apart too.
        if self.config.batch_size > 1:
            identity["batch_size"] = self.config.batch_size
        return identity

    def raw_scores(self, audio: np.ndarray) -> dict[str, float]:
        raise NotImplementedError

    def raw_scores_batch(self, audios: list[np.ndarray]) -> list[dict[str, float]]:
        return [self.raw_scores(audio) for audio in audios]

    def check(self, audio: np.ndarray, reference: np.ndarray | None, sample_rate: int, emotion: str) -> EmotionResult:
        return self.verdict(self.raw_scores(resample(audio, sample_rate, CLASSIFIER_RATE)), emotion)

    def check_batch(self, items: list[EmotionItem]) -> list[EmotionResult | Exception]:
        """Scores for `batch_size` clips per model call; when a call fails, its clips are scored one at a
        time so that a bad clip fails only itself."""
        results: list[EmotionResult | Exception] = []
        size = self.config.batch_size
        for start in range(0, len(items), size):
            batch = items[start : start + size]
            try:
                raws = self.raw_scores_batch([resample(i.audio, i.sample_rate, CLASSIFIER_RATE) for i in batch])
            except Exception as exc:
                raise_if_infrastructure(exc, "emotion")
                results += check_each(batch, self.check)
                continue
            for item, raw in zip(batch, raws, strict=True):
                try:
                    results.append(self.verdict(raw, item.emotion))
                except ValueError as exc:  # no label of ours among the model's: this clip's failure
                    results.append(exc)
        return results

    def verdict(self, raw: dict[str, float], emotion: str) -> EmotionResult:
        scores = map_scores(raw, self.label_map)
        if not scores:
            raise ValueError("the classifier returned no label that label_map maps to an emotion")
        predicted = max(scores, key=scores.get)
        prob = scores.get(emotion, 0.0)
        passed = predicted == emotion or prob >= self.config.min_prob
        return EmotionResult(passed=passed, score=round(prob, 4), predicted=predicted)


class TransformersEmotion(ClassifierCheck):
    def __init__(self, config: ClassifierEmotion):
        try:
            from transformers import pipeline
        except ImportError:
            raise BackendUnavailable(
                "emotion backend transformers needs: pip install 'empathy-data[transformers]'"
            ) from None
        self.pipe = pipeline("audio-classification", model=config.model, device=config.device, top_k=None)
        labels = list(self.pipe.model.config.id2label.values())
        super().__init__(config, config.label_map or {label: label for label in labels})

    def raw_scores(self, audio: np.ndarray) -> dict[str, float]:
        out = self.pipe({"raw": audio, "sampling_rate": CLASSIFIER_RATE})
        return {item["label"]: float(item["score"]) for item in out}

    def raw_scores_batch(self, audios: list[np.ndarray]) -> list[dict[str, float]]:
        inputs = [{"raw": audio, "sampling_rate": CLASSIFIER_RATE} for audio in audios]
        outputs = self.pipe(inputs, batch_size=self.config.batch_size)
        return [{item["label"]: float(item["score"]) for item in out} for out in outputs]


class Emotion2Vec(ClassifierCheck):
    def __init__(self, config: ClassifierEmotion):
        try:
            from funasr import AutoModel
        except ImportError as exc:  # funasr imports torchaudio without declaring it
            raise BackendUnavailable(
                f"emotion backend emotion2vec needs funasr and torchaudio ({exc.name} is missing): run it as a "
                "service in an environment of its own (services/README.md)"
            ) from None
        self.model = AutoModel(model=config.model, hub=config.hub, disable_update=True, device=config.device)
        super().__init__(config, config.label_map or EMOTION2VEC_LABELS)

    def raw_scores(self, audio: np.ndarray) -> dict[str, float]:
        [result] = self.model.generate(audio, granularity="utterance", extract_embedding=False, fs=CLASSIFIER_RATE)
        return self._labelled(result)

    def raw_scores_batch(self, audios: list[np.ndarray]) -> list[dict[str, float]]:
        if len(audios) == 1:
            return [self.raw_scores(audios[0])]
        results = self.model.generate(
            audios, granularity="utterance", extract_embedding=False, fs=CLASSIFIER_RATE,
            batch_size=self.config.batch_size,
        )  # fmt: skip
        if len(results) != len(audios):
            raise ValueError(f"emotion2vec returned {len(results)} results for {len(audios)} clips")
        return [self._labelled(result) for result in results]

    @staticmethod
    def _labelled(result: dict) -> dict[str, float]:
        return {
            str(label).split("/")[-1]: float(score)
            for label, score in zip(result["labels"], result["scores"], strict=True)
        }


def classifier_check(config: ClassifierEmotion) -> ClassifierCheck:
    return Emotion2Vec(config) if config.backend == "emotion2vec" else TransformersEmotion(config)
