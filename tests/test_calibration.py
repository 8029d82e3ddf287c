"""The emotion check is measured on the build's own TTS before it gates: the matrix, the gate, the cache."""

from __future__ import annotations

import numpy as np
import pytest

from empathy_data.backends import registry
from empathy_data.core.audio import write_flac
from empathy_data.core.labels import EMOTIONS
from empathy_data.records.schema import Utterance
from empathy_data.runtime import calibration as runtime_calibration
from empathy_data.stages.filter.base import EmotionResult
from empathy_data.stages.filter.calibration import Calibration, measure, probe_set
from empathy_data.stages.filter.stage import RECORDED_EMOTION, score_utterances
from tests.helpers import make_context, sine

AROUSAL = {"neutral": 0, "happy": 1, "angry": 1, "fearful": 1, "surprised": 1, "sad": -1, "disgusted": -1}


class ToneTTS:
    """Renders each emotion as its own pitch, so a check can tell what a clip was rendered in."""

    sample_rate = 16000

    def __init__(self):
        self.rendered = 0

    @property
    def identity(self) -> dict:
        return {"backend": "tone"}

    def synthesize(self, requests):
        self.rendered += len(requests)
        return [sine(200 + 40 * EMOTIONS.index(r.emotion), 0.5) for r in requests]


class ArousalCheck:
    """Hears only arousal (as the prosody check does): it cannot tell emotions of one arousal apart."""

    identity = {"backend": "arousal"}

    def __init__(self):
        self.items = 0

    def check_batch(self, items):
        self.items += len(items)
        results = []
        for item in items:
            pitch = np.argmax(np.abs(np.fft.rfft(item.audio))) * item.sample_rate / len(item.audio)
            heard = EMOTIONS[round((pitch - 200) / 40)]
            results.append(EmotionResult(passed=AROUSAL[heard] == AROUSAL[item.emotion], score=1.0))
        return results


def test_an_arousal_check_gates_only_the_emotions_it_can_tell_apart(tmp_path):
    ctx = make_context(tmp_path)
    pool = ctx.planner.pool
    probes = probe_set(["en"], list(EMOTIONS), lambda lang, g: pool.matching(lang, g), sentences=1, voices=2)
    assert len(probes) == 2 * len(EMOTIONS)
    assert {p.speaker.gender for p in probes} == {"female", "male"}
    clips = [(sine(200 + 40 * EMOTIONS.index(p.emotion), 0.5), sine(200, 0.5)) for p in probes]
    result = measure(probes, clips, ArousalCheck(), 16000, list(EMOTIONS), {"t": 1})
    assert result.matrix["happy"]["angry"] == 1.0 and result.matrix["happy"]["sad"] == 0.0
    assert result.recall("happy") == 1.0 and result.precision("happy") == pytest.approx(0.25)
    assert result.precision("sad") == pytest.approx(0.5) and result.precision("neutral") == 1.0
    assert result.gated(0.75, 0.5) == ["neutral", "sad", "disgusted"]
    assert result.gated(0.75, 0.9) == ["neutral"]
    assert Calibration.from_json(result.to_json()) == result


def test_the_calibration_is_measured_once_per_identity_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("EMPATHY_DATA_CACHE", str(tmp_path / "cache"))
    tts, check = ToneTTS(), ArousalCheck()
    monkeypatch.setattr(registry, "tts_backend", lambda config: tts)
    monkeypatch.setattr(registry, "emotion_backend", lambda config: check)
    emotion = {"backend": "prosody", "calibration_sentences": 1, "calibration_voices": 2}
    ctx = make_context(tmp_path / "a", filter={"emotion": emotion})
    assert runtime_calibration.gated_emotions(ctx) == {"neutral", "sad", "disgusted"}
    rendered, checked = tts.rendered, check.items
    assert rendered == 2 * 2 * len(EMOTIONS)  # each probe and its neutral reference
    probed = []
    monkeypatch.setattr(runtime_calibration, "probes_of", lambda c: probed.append(c) or [])
    for _ in range(3):  # every filter chunk asks: found once per context, no probe set built again
        assert runtime_calibration.gated_emotions(ctx) == {"neutral", "sad", "disgusted"}
    assert runtime_calibration.summary(ctx)["gated"] == ["disgusted", "neutral", "sad"] and probed == []
    monkeypatch.undo()
    monkeypatch.setenv("EMPATHY_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(registry, "tts_backend", lambda config: tts)
    monkeypatch.setattr(registry, "emotion_backend", lambda config: check)
    again = make_context(tmp_path / "a", filter={"emotion": emotion})
    runtime_calibration.gated_emotions(again)  # another context on the same output: the build's store holds it
    other = make_context(tmp_path / "b", filter={"emotion": emotion})  # another build: the user's cache holds it
    assert runtime_calibration.summary(other)["gated"] == ["disgusted", "neutral", "sad"]
    assert (tts.rendered, check.items) == (rendered, checked)
    # another probe set is another identity: measured again
    more = make_context(tmp_path / "c", filter={"emotion": {**emotion, "calibration_voices": 1}})
    runtime_calibration.gated_emotions(more)
    assert tts.rendered == rendered + len(EMOTIONS) * 2
    # floors both null: no calibration, every emotion gates
    off = make_context(tmp_path / "d", filter={"emotion": {"backend": "prosody", "min_recall": None, "min_precision": None}})
    assert runtime_calibration.gated_emotions(off) is None and runtime_calibration.summary(off) == {}


def test_an_emotion_its_calibration_did_not_trust_is_recorded_not_gated(tmp_path):
    class FailingCheck:
        identity = {"backend": "no"}

        def check_batch(self, items):
            return [EmotionResult(passed=False, score=0.0) for _ in items]

    class HearsTheText:
        def transcribe(self, audios, languages):
            return ["I lost my keys today and I am upset about it."] * len(audios)

    write_flac(tmp_path / "u.flac", sine(220, 1.5), 16000)
    utterances = [
        Utterance(dialogue_id="d", turn_index=i, role="user", text="I lost my keys today and I am upset about it.",
                  speaker_id="s", emotion=emotion, response_style=None, audio_path="u.flac", sample_rate=16000,
                  duration=1.5, tts={})
        for i, emotion in enumerate(["sad", "angry"])
    ]  # fmt: skip
    thresholds = make_context(tmp_path).config.filter.thresholds
    scores = score_utterances(utterances, {"d": "en"}, tmp_path, HearsTheText(), FailingCheck(), thresholds, gated=frozenset({"sad"}))
    sad, angry = scores
    assert sad.verdict == "rejected" and sad.checks["emotion"] == "fail"
    assert angry.verdict == "accepted" and angry.checks[RECORDED_EMOTION] == "fail" and "emotion" not in angry.checks


def test_the_calibrate_command_prints_the_matrix_and_leaves_the_output_alone(tmp_path, monkeypatch):
    import json

    import yaml
    from typer.testing import CliRunner

    from empathy_data.cli import app

    monkeypatch.setenv("EMPATHY_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(registry, "tts_backend", lambda config: ToneTTS())
    monkeypatch.setattr(registry, "emotion_backend", lambda config: ArousalCheck())
    config = {"output": str(tmp_path / "out"), "filter": {"emotion": {"backend": "prosody", "calibration_sentences": 1}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(app, ["calibrate", str(tmp_path / "c.yaml"), "--to", str(tmp_path / "cal.json")])
    assert result.exit_code == 0, result.output
    assert "gates (recall >= 0.75, precision >= 0.5): disgusted, neutral, sad" in result.output
    written = json.loads((tmp_path / "cal.json").read_text())
    assert written["gated"] == ["disgusted", "neutral", "sad"] and written["precision"]["happy"] == 0.25
    assert not (tmp_path / "out").exists()


def test_the_card_shows_the_matrix_and_which_emotions_gated(tmp_path):
    import json

    from empathy_data.records.manifest import Manifest
    from empathy_data.stages.export.card import dataset_card
    from tests.corpus_builder import make_corpus

    manifest = Manifest.parse((make_corpus(tmp_path) / "manifest.json").read_text(), "manifest.json")
    config = make_context(tmp_path).config.model_dump(mode="json")
    manifest = manifest.model_copy(update={"config": config})
    card = dataset_card(manifest)
    section = card[card.index("## Emotion check calibration"):]
    assert "| sad | 0.25 | 0.00 | 0.50 |" in section  # row: rendered sad
    assert "| sad | 0.50 | 1.00 | no (recorded) |" in section and "| happy | 0.75 | 1.00 | yes |" in section
    empty = Manifest.model_validate({**json.loads(manifest.model_dump_json()), "calibration": {}})
    assert "Emotion check calibration" not in dataset_card(empty)
