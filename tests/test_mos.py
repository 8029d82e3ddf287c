"""DNSMOS backend against tiny ONNX models shaped like the real sig_bak_ovr.onnx (input_1 [N, 144160] ->
[N, 3] raw SIG, BAK, OVRL): raw scores are weights * mean(|audio|) + bias, so a window's raw scores can be
worked out by hand."""

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

from empathy_data.core.errors import ConfigError, InfrastructureError  # noqa: E402
from empathy_data.records.reasons import Reason  # noqa: E402
from empathy_data.stages.filter.mos import DNSMOS, MOSResult  # noqa: E402

WINDOW = 144160
WEIGHTS = (4.0, 2.0, 6.0)  # SIG, BAK, OVRL
BIAS = (2.0, 2.25, 1.0)
# The published fits (DNS-Challenge DNSMOS/dnsmos_local.py), highest power first, SIG, BAK, OVRL.
FIT = (
    (-0.08397278, 1.22083953, 0.0052439),
    (-0.13166888, 1.60915514, -0.39604546),
    (-0.06766283, 1.11546468, 0.04602535),
)


def save_model(path: Path, batch: str | int = "N", length: int = WINDOW, broken: bool = False) -> Path:
    audio = helper.make_tensor_value_info("input_1", TensorProto.FLOAT, [batch, length])
    scores = helper.make_tensor_value_info("Identity:0", TensorProto.FLOAT, [batch, 3])
    nodes = [helper.make_node("Abs", ["input_1"], ["abs"])]
    if broken:  # a reshape that cannot work at run time: 144160 is not a multiple of 7
        nodes.append(helper.make_node("Reshape", ["abs", "shape"], ["reshaped"]))
    nodes += [
        helper.make_node("ReduceMean", ["reshaped" if broken else "abs"], ["level"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["level", "weights"], ["scaled"]),
        helper.make_node("Add", ["scaled", "bias"], ["Identity:0"]),
    ]
    constants = [
        helper.make_tensor("weights", TensorProto.FLOAT, [1, 3], WEIGHTS),
        helper.make_tensor("bias", TensorProto.FLOAT, [1, 3], BIAS),
    ]
    if broken:
        constants.append(helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 7]))
    graph = helper.make_graph(nodes, "tiny_dnsmos", [audio], [scores], initializer=constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    return save_model(tmp_path / "sig_bak_ovr.onnx")


def by_hand(level: float) -> np.ndarray:
    """MOS (SIG, BAK, OVRL) of one window whose mean |sample| is `level`."""
    raw = [w * level + b for w, b in zip(WEIGHTS, BIAS, strict=True)]
    return np.array([a * r * r + b * r + c for (a, b, c), r in zip(FIT, raw, strict=True)])


def as_array(result: MOSResult) -> np.ndarray:
    return np.array([result.sig, result.bak, result.ovrl])


def noise(seconds: float, rate: int, amp: float, seed: int) -> np.ndarray:
    return (amp * np.random.default_rng(seed).standard_normal(int(seconds * rate))).astype(np.float32)


def test_scores_follow_the_published_polynomials(model_path):
    clip = np.tile(np.array([0.25, -0.25], dtype=np.float32), WINDOW // 2)  # one window, mean |x| 0.25
    [result] = DNSMOS(str(model_path)).score_batch([(clip, 16000)])
    # raw SIG 3.0, BAK 2.75, OVRL 2.5
    sig = -0.08397278 * 9 + 1.22083953 * 3 + 0.0052439
    bak = -0.13166888 * 2.75**2 + 1.60915514 * 2.75 - 0.39604546
    ovrl = -0.06766283 * 2.5**2 + 1.11546468 * 2.5 + 0.04602535
    assert (result.sig, result.bak, result.ovrl) == pytest.approx((sig, bak, ovrl), abs=1e-9)
    assert all(1 <= score <= 5 for score in (result.sig, result.bak, result.ovrl))

    [personal] = DNSMOS(str(model_path), personalized=True).score_batch([(clip, 16000)])
    assert personal.sig == pytest.approx(-0.01019296 * 27 + 0.02751166 * 9 + 1.19576786 * 3 - 0.24348726, abs=1e-9)
    assert personal.bak == pytest.approx(
        -0.04976499 * 2.75**3 + 0.44276479 * 2.75**2 - 0.1644611 * 2.75 + 0.96883132, abs=1e-9
    )
    assert personal.ovrl == pytest.approx(
        -0.00533021 * 2.5**3 + 0.005101 * 2.5**2 + 1.18058466 * 2.5 - 0.11236046, abs=1e-9
    )


@pytest.mark.parametrize(
    ("seconds", "starts"),
    [
        (12, [0, 1, 2]),  # 9.01 s windows one second apart
        (10.5, [0]),  # the last window starts at least a whole second before the end
        (4, [0, 1, 2, 3, 4, 5, 6]),  # a short clip is doubled until it fills a window: 16 s
    ],
)
def test_windows_are_averaged_after_the_polynomial(model_path, seconds, starts):
    # Each second of the clip has its own level, so another set of windows gives other scores; levels in
    # 64ths keep the model's float32 sums exact.
    levels = np.repeat((2 + np.arange(int(np.ceil(seconds)))) / 64, 16000)[: int(seconds * 16000)]
    signs = np.where(np.arange(len(levels)) % 2 == 0, 1.0, -1.0)
    clip = (levels * signs).astype(np.float32)
    tiled = np.abs(clip.astype(np.float64))
    while len(tiled) < WINDOW:
        tiled = np.concatenate([tiled, tiled])
    expected = np.mean([by_hand(tiled[s * 16000 : s * 16000 + WINDOW].mean()) for s in starts], axis=0)
    [result] = DNSMOS(str(model_path)).score_batch([(clip, 16000)])
    np.testing.assert_allclose(as_array(result), expected, rtol=0, atol=1e-6)


def test_clips_are_resampled_to_16_khz_first(model_path):
    # A 4 s ramp at 48 kHz is 4 s at 16 kHz (doubled to 16 s: 7 windows), not 12 s (3 windows).
    clip = np.linspace(0, 1, 4 * 48000, dtype=np.float32)
    tiled = np.tile(np.linspace(0, 1, 4 * 16000), 4)
    expected = np.mean([by_hand(tiled[s * 16000 : s * 16000 + WINDOW].mean()) for s in range(7)], axis=0)
    [result] = DNSMOS(str(model_path)).score_batch([(clip, 48000)])
    np.testing.assert_allclose(as_array(result), expected, rtol=0, atol=2e-3)


def test_batch_size_and_neighbours_do_not_change_scores(model_path, tmp_path):
    clips = [
        (noise(2.0, 16000, 0.05, 1), 16000),
        (noise(5.5, 24000, 0.2, 2), 24000),
        (noise(9.01, 16000, 0.1, 3), 16000),
        (noise(12.3, 48000, 0.3, 4), 48000),
        (noise(20.0, 16000, 0.02, 5), 16000),
    ]
    one = DNSMOS(str(model_path), batch_size=1).score_batch(clips)
    assert all(isinstance(r, MOSResult) for r in one)
    assert len({r.ovrl for r in one}) == len(clips)  # louder clips score otherwise
    assert DNSMOS(str(model_path), batch_size=4).score_batch(clips) == one
    assert DNSMOS(str(model_path), batch_size=3).score_batch(clips) == one
    alone = DNSMOS(str(model_path), batch_size=4)
    assert [alone.score_batch([clip])[0] for clip in clips] == one
    fixed = DNSMOS(str(save_model(tmp_path / "fixed.onnx", batch=1)), batch_size=4)
    assert fixed.batch_size == 1
    assert fixed.score_batch(clips) == one


def test_a_bad_clip_fails_only_itself(model_path):
    good = (noise(3.0, 16000, 0.1, 7), 16000)
    nan = noise(3.0, 16000, 0.1, 8)
    nan[100] = np.nan
    clips = [good, (np.zeros(0, np.float32), 16000), (nan, 16000), (np.zeros((2, 16000), np.float32), 16000), good]
    results = DNSMOS(str(model_path), batch_size=4).score_batch(clips)
    assert [type(r) for r in results] == [MOSResult, ValueError, ValueError, ValueError, MOSResult]
    assert "empty" in str(results[1]) and "NaN" in str(results[2]) and "shape" in str(results[3])
    assert results[0] == results[4] == DNSMOS(str(model_path)).score_batch([good])[0]


def test_a_missing_model_is_a_one_line_config_error(tmp_path):
    missing = tmp_path / "nowhere" / "sig_bak_ovr.onnx"
    with pytest.raises(ConfigError) as raised:
        DNSMOS(str(missing))
    assert raised.value.where == "filter.mos.model"
    assert str(missing) in str(raised.value) and "\n" not in str(raised.value)
    with pytest.raises(ConfigError, match="sig_bak_ovr.onnx"):
        DNSMOS(str(tmp_path))  # a directory without the model


def test_a_directory_holding_the_model_works(model_path):
    clip = (noise(4.0, 16000, 0.1, 9), 16000)
    from_dir = DNSMOS(str(model_path.parent))
    assert from_dir.score_batch([clip]) == DNSMOS(str(model_path)).score_batch([clip])
    assert from_dir.identity == {"backend": "dnsmos", "personalized": False}
    assert DNSMOS(str(model_path), personalized=True).identity["personalized"] is True


def test_a_model_that_is_not_dnsmos_or_fails_to_run(tmp_path, model_path):
    with pytest.raises(ConfigError, match=r"\[N, 144160\]"):
        DNSMOS(str(save_model(tmp_path / "short.onnx", length=16000)))
    clip = (noise(3.0, 16000, 0.1, 10), 16000)
    with pytest.raises(InfrastructureError, match="onnxruntime"):
        DNSMOS(str(save_model(tmp_path / "broken.onnx", broken=True))).score_batch([clip])

    model = DNSMOS(str(model_path))

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    model.session.run = out_of_memory
    with pytest.raises(InfrastructureError, match="MemoryError"):
        model.score_batch([clip])


def test_the_filter_stage_rejects_turns_below_min_mos_and_keeps_the_score(model_path, tmp_path):
    """The tiny model scores loudness: a quiet turn falls under `min_mos` and its exchange is rejected."""
    from empathy_data.config.model import FilterConfig
    from empathy_data.core.audio import write_flac
    from empathy_data.records.schema import Utterance
    from empathy_data.stages.filter.audio_judges import AudioJudges
    from empathy_data.stages.filter.stage import exchange_verdict, score_utterances

    rate = 16000
    utterances = []
    for i, amp in enumerate((0.3, 0.3, 0.01, 0.3)):
        write_flac(tmp_path / f"t{i}.flac", noise(2.0, rate, amp, seed=i), rate)
        utterances.append(Utterance(
            dialogue_id="d", turn_index=i, role=("user", "assistant")[i % 2], text="hello there friend",
            speaker_id="s", emotion=None, response_style=None, audio_path=f"t{i}.flac", sample_rate=rate,
            duration=2.0, tts={},
        ))  # fmt: skip

    class ScriptedASR:
        identity: dict = {}

        def transcribe(self, audios, languages):
            return ["hello there friend"] * len(audios)

    loud = DNSMOS(str(model_path)).score_batch([(noise(2.0, rate, 0.3, seed=0), rate)])[0].ovrl
    quiet = DNSMOS(str(model_path)).score_batch([(noise(2.0, rate, 0.01, seed=2), rate)])[0].ovrl
    config = FilterConfig(speaker={"enabled": False}, mos={"model": str(model_path), "min_mos": (loud + quiet) / 2},
                          thresholds={"check_emotion": False, "max_silence_ratio": 1.0})  # fmt: skip
    judges = AudioJudges(config, mos=DNSMOS(str(model_path)))
    scores = score_utterances(utterances, {"d": "en"}, tmp_path, ScriptedASR(), None, config.thresholds, judges)
    assert [s.checks["mos"] for s in scores] == ["pass", "pass", "fail", "pass"]
    assert exchange_verdict(scores[0], scores[1]) == ("accepted", [])
    assert exchange_verdict(scores[2], scores[3]) == ("rejected", [Reason(stage="filter", check="user.mos")])
    assert scores[2].mos < scores[0].mos


def test_the_embedded_model_is_the_one_inside_speechmos():
    """'embedded' loads the DNSMOS P.835 weights shipped in the speechmos wheel (offline, no download)."""
    pytest.importorskip("onnxruntime")
    from empathy_data.stages.filter.mos import embedded_model

    path = embedded_model()
    assert path.name == "sig_bak_ovr.onnx" and "speechmos" in str(path) and path.stat().st_size > 1_000_000
    assert embedded_model(personalized=True).parent.name == "pdnsmos_models"
    result = DNSMOS("embedded").score_batch([(noise(2.0, 16000, 0.1, seed=1), 16000)])[0]
    assert 1 <= result.ovrl <= 5 and 1 <= result.sig <= 5 and 1 <= result.bak <= 5
