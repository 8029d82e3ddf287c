"""Real speech in: `empathy-data ingest` reads a corpus (label maps, clip checks, one-line errors, nothing
written on a problem), and a build with `ingest:` plans its configured share of dialogues on the recordings."""

from __future__ import annotations

import csv
import json
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from empathy_data.backends import registry as backends
from empathy_data.config.model import SynthesizeConfig
from empathy_data.core.corpus_labels import label_map
from empathy_data.core.errors import ConfigError
from empathy_data.planning.real_queries import load_real_corpus
from empathy_data.records.manifest import FORMAT_VERSION
from empathy_data.records.schema import Speaker
from empathy_data.stages.synthesize.base import TTSRequest
from empathy_data.tools.ingest import IngestOptions, age_group_of, read_corpus, write_corpus
from empathy_data.tools.verify import verify_corpus
from tests.cli_helpers import run_cli
from tests.helpers import FakeChat, make_context, sine
from tests.test_regenerate import build

# (transcript, the corpus's label, speaker, gender)
SAYINGS = [
    ("I waited all morning for the results and nobody has called me back yet.", "fru", "s1", "F"),
    ("We finally got the keys to our new flat this afternoon.", "exc", "s1", "F"),
    ("My grandfather passed away last week and the house feels empty.", "sad", "s2", "M"),
    ("Someone scratched my car in the car park and just drove off.", "ang", "s2", "M"),
    ("I heard strange noises downstairs in the middle of the night.", "fea", "s3", "F"),
    ("The bus came on time today and the ride was quiet.", "neu", "s3", "F"),
    ("I passed my exam with the best mark in the whole class.", "hap", "s4", "M"),
    ("My best friend is moving to another country next month.", "sad", "s4", "M"),
]


def speak(text: str, path, gender: str) -> None:
    """A recording-like clip: espeak's voice saying the words, at 22.05 kHz."""
    tts = backends.tts_backend(SynthesizeConfig.model_validate({"tts": {"backend": "espeak"}}))
    voice = Speaker(id="x", gender="female" if gender == "F" else "male", age_group="adult", language="en",
                    voice={"voice": "en-us", "variant": "f3" if gender == "F" else "m3"})  # fmt: skip
    (audio,) = tts.synthesize([TTSRequest(text, "en", voice, None, None)])
    sf.write(path, audio, tts.sample_rate)


@pytest.fixture(scope="module")
def iemocap_like(tmp_path_factory):
    """An IEMOCAP-style manifest: its labels (exc, fru, ...), gender F/M, one clip per row."""
    root = tmp_path_factory.mktemp("iemocap")
    (root / "wav").mkdir()
    with open(root / "labels.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["utt", "wav", "transcription", "label", "spk", "sex"])
        for i, (text, label, speaker, gender) in enumerate(SAYINGS):
            speak(text, root / "wav" / f"utt{i}.wav", gender)
            writer.writerow([f"utt{i}", f"wav/utt{i}.wav", text, label, speaker, gender])
    return root


COLUMNS = {"id": "utt", "audio": "wav", "text": "transcription", "emotion": "label", "speaker": "spk", "gender": "sex"}


def options(**changes) -> IngestOptions:
    base = dict(name="iemo", labels="iemocap", language="en", age_group="adult", licence="test-only",
                source="made by tests/test_ingest.py", skip_labels=frozenset({"fru"}), columns=COLUMNS)  # fmt: skip
    return IngestOptions(**{**base, **changes})


def ingested(iemocap_like, tmp_path):
    result = read_corpus(iemocap_like / "labels.csv", options())
    assert result.problems == []
    write_corpus(result, tmp_path / "ingested", iemocap_like / "labels.csv", options())
    return tmp_path / "ingested"


def test_label_maps_cover_the_named_corpora():
    assert label_map("iemocap")["exc"] == "happy" and "fru" not in label_map("iemocap")
    assert label_map("meld")["joy"] == "happy" and label_map("esd")["surprise"] == "surprised"
    assert label_map("ravdess")["06"] == "fearful" and "02" not in label_map("ravdess")  # calm
    assert label_map("crema-d")["dis"] == "disgusted" and label_map("casia")["fear"] == "fearful"
    assert label_map("zh")["生气"] == "angry"
    assert [age_group_of(y) for y in (8, 15, 25, 45, 70)] == ["child", "teen", "young_adult", "adult", "elderly"]


def test_ingest_maps_labels_copies_clips_and_summarises(iemocap_like, tmp_path):
    out = ingested(iemocap_like, tmp_path)
    rows = [json.loads(line) for line in (out / "queries.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"utt{i}" for i in range(1, 8)]  # utt0 (fru) dropped on purpose
    assert Counter(r["emotion"] for r in rows) == {"sad": 2, "happy": 2, "angry": 1, "fearful": 1, "neutral": 1}
    assert {r["gender"] for r in rows} == {"female", "male"} and {r["age_group"] for r in rows} == {"adult"}
    assert all((out / r["audio"]).is_file() and sf.info(out / r["audio"]).samplerate == 22050 for r in rows)
    summary = json.loads((out / "corpus.json").read_text())
    assert summary["queries"] == 7 and summary["skipped"] == {"fru": 1} and summary["licence"] == "test-only"
    corpus = load_real_corpus(out)
    assert {(lang, e) for lang, e in corpus.cells()} == {("en", e) for e in ("sad", "happy", "angry", "fearful", "neutral")}


def test_every_bad_row_is_one_line_naming_file_and_row_and_nothing_is_written(iemocap_like, tmp_path):
    corpus = tmp_path / "bad"
    corpus.mkdir()
    sf.write(corpus / "silent.wav", np.zeros(32000, dtype=np.float32), 16000)
    sf.write(corpus / "short.wav", sine(seconds=0.3), 16000)
    rows = [
        ["a", str(iemocap_like / "wav/utt1.wav"), "fine words here", "exc", "s1", "F"],
        ["b", str(iemocap_like / "wav/utt2.wav"), "some words", "oth", "s1", "F"],  # unmapped label
        ["c", "silent.wav", "some words", "sad", "s2", "M"],
        ["d", "missing.wav", "some words", "sad", "s2", "M"],
        ["e", "short.wav", "some words", "sad", "s2", "M"],
        ["f", str(iemocap_like / "wav/utt3.wav"), "some words", "sad", "s2", "X"],  # no such gender
    ]
    with open(corpus / "labels.csv", "w", newline="") as f:
        csv.writer(f).writerows([["utt", "wav", "transcription", "label", "spk", "sex"], *rows])
    result = run_cli("ingest", str(corpus / "labels.csv"), "--to", str(tmp_path / "out"), "--name", "bad",
                     "--labels", "iemocap", "--language", "en", "--age-group", "adult",
                     "--columns", ",".join(f"{k}={v}" for k, v in COLUMNS.items()))  # fmt: skip
    assert result.returncode == 2
    problems = [line for line in result.stderr.splitlines() if line.startswith("problem:")]
    where = f"{corpus / 'labels.csv'}"
    assert problems == [
        f"problem: {where}:3: emotion label 'oth' is not in the iemocap label map (map it in the manifest, or drop it with --skip-label)",
        f"problem: {where}:4: {corpus / 'silent.wav'}: silent (peak below -40 dBFS)",
        f"problem: {where}:5: missing file {corpus / 'missing.wav'}",
        f"problem: {where}:6: {corpus / 'short.wav'}: 0.3 s, outside 1-30 s",
        f"problem: {where}:7: gender 'x' not in ['female', 'male'] (a gender column or --gender)",
    ]
    assert "5 problem(s); nothing written" in result.stderr
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


def test_ravdess_and_crema_d_file_names_give_labels_speakers_and_sentences(iemocap_like, tmp_path):
    clip = iemocap_like / "wav/utt1.wav"
    ravdess, crema = tmp_path / "ravdess" / "Actor_07", tmp_path / "crema"
    ravdess.mkdir(parents=True)
    crema.mkdir()
    for name in ("03-01-06-01-02-01-07", "03-01-02-01-01-01-07", "03-02-05-01-01-01-07"):  # fearful, calm, song
        (ravdess / f"{name}.wav").write_bytes(clip.read_bytes())
    (crema / "1091_DFA_ANG_XX.wav").write_bytes(clip.read_bytes())
    (crema / "VideoDemographics.csv").write_text("ActorID,Age,Sex,Race,Ethnicity\n1091,29,Female,Asian,Not Hispanic\n")

    found = read_corpus(tmp_path / "ravdess", options(layout="ravdess", labels="ravdess", skip_labels=frozenset({"02"})))
    assert found.problems == [] and found.skipped == {"song": 1, "02": 1}
    (only,) = found.queries
    assert (only["emotion"], only["transcript"], only["speaker"], only["gender"]) == (
        "fearful", "Dogs are sitting by the door.", "actor07", "male")
    found = read_corpus(tmp_path / "crema", options(layout="crema-d", labels="crema-d", age_group=None))
    (only,) = found.queries
    assert (only["emotion"], only["transcript"], only["gender"], only["age_group"]) == (
        "angry", "Don't forget a jacket.", "female", "young_adult")


def mixed_context(tmp_path, corpus, mix=0.5, n=8):
    return make_context(
        tmp_path, num_dialogues=n, chunk_size=4, ingest={"path": str(corpus), "mix": mix},
        distributions={"exchanges": {1: 1.0}, "user_emotion": {"sad": 0.5, "happy": 0.5}},
        script={"max_attempts": 1},
        synthesize={"sample_rate": 16000, "tts": {"backend": "espeak", "neutral_reference": False}},
        filter={"thresholds": {"check_emotion": False}},
        export={"near_duplicate_threshold": None},
    )  # fmt: skip


def test_the_plan_puts_real_queries_in_their_share_with_their_own_labels(iemocap_like, tmp_path):
    ctx = mixed_context(tmp_path, ingested(iemocap_like, tmp_path), mix=0.25, n=40)
    specs = [ctx.planner.spec(i) for i in range(40)]
    real = [s for s in specs if s.real_query is not None]
    for prefix in range(1, 41):  # the share holds on every prefix of the plan
        assert abs(sum(s.real_query is not None for s in specs[:prefix]) - prefix / 4) <= 1
    assert all(s.num_exchanges == 1 and s.source == "real" and s.scenario == "recorded" for s in real)
    corpus = ctx.planner.real
    labels = {i.query.id: (i.emotion, i.speaker.gender) for i in corpus.items}
    for s in real:  # the recording's own emotion and speaker; only sad and happy are configured
        assert labels[s.real_query.id] == (s.turns[0].emotion, s.user.gender) and s.turns[0].emotion in ("sad", "happy")
    uses = Counter(s.real_query.id for s in real)  # each of the 4 sad/happy recordings before any twice
    assert max(uses.values()) - min(uses.values()) <= 1 and len(uses) == 4
    assert ctx.planner.key != mixed_context(tmp_path, corpus.roots["iemo"], mix=0.5).planner.key


def test_an_ingest_with_no_configured_emotion_is_a_config_error(iemocap_like, tmp_path):
    corpus = ingested(iemocap_like, tmp_path)
    with pytest.raises(ConfigError, match="none of its queries has a configured language"):
        make_context(tmp_path, ingest={"path": str(corpus), "mix": 0.5}, distributions={"user_emotion": {"surprised": 1.0}})


def test_a_mixed_build_keeps_the_recordings_and_says_which_rows_are_real(iemocap_like, tmp_path):
    ctx = mixed_context(tmp_path, ingested(iemocap_like, tmp_path), mix=0.5, n=8)
    chat = FakeChat()
    manifest = build(ctx, chat)
    assert manifest["counts"]["exchanges"]["accepted"] == 8
    rows = [r for f in sorted((ctx.out / "data").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    real = [r for r in rows if r["source"] == "real"]
    assert len(real) == 4 and {r["source"] for r in rows} == {"real", "synthetic"}
    transcripts = {text for text, *_ in SAYINGS}
    assert all(r["user_text"] in transcripts and r["user_speaker_id"].startswith("iemo:") for r in real)
    assert all(r["provenance"]["tts_backend"] == "espeak-ng" for r in rows)  # the reply's TTS, also on real rows
    # the prompt of a recording gives its words and asks for the reply only
    reply_prompts = [c["messages"][1]["content"] for c in chat.calls if "said this out loud" in c["messages"][1]["content"]]
    assert len(reply_prompts) == 4 and all(any(t in p for t in transcripts) for p in reply_prompts)
    # the recorded turn is the recording (resampled to 16 kHz), not espeak's rendering of its words
    records = [json.loads(line) for c in range(2) for line in
               (ctx.layout.chunk_path("synthesize", c, 0) / "records.jsonl").read_text().splitlines()]  # fmt: skip
    recorded = [r for r in records if r["kind"] == "utterance" and r["tts"]["backend"] == "recording"]
    assert len(recorded) == 4 and all(r["role"] == "user" and r["reference_audio_path"] is None for r in recorded)
    by_source = manifest["distributions"]["by_source"]
    assert by_source["real"]["accepted"]["source"] == {"real": 4} and by_source["synthetic"]["planned"]["user_emotion"]
    assert [c["name"] for c in manifest["ingested"]["corpora"]] == ["iemo"] and manifest["format_version"] == FORMAT_VERSION
    card = (ctx.out / "README.md").read_text()
    assert "## Real recordings" in card and "| iemo | made by tests/test_ingest.py | test-only | 7 |" in card
    assert "| real: planned | real: accepted | real: kept |" in card.replace(" synthetic:", "")
    assert "| exchanges, real | 4 | 4 | 0 | 0 |" in card and "| exchanges, synthetic | 4 | 4 | 0 | 0 |" in card
    assert by_source["real"]["exchanges"] == {"accepted": 4}
    assert by_source["real"]["script_checks"]["validation"] == {"pass": 4, "fail": 0}  # the judges' table too
    verify_corpus(ctx.out)


def test_the_report_draws_real_and_synthetic_apart(iemocap_like, tmp_path):
    from empathy_data.tools.report import load_report_data
    from empathy_data.tools.report.figures import sources

    ctx = mixed_context(tmp_path, ingested(iemocap_like, tmp_path), mix=0.5, n=4)
    build(ctx, FakeChat())
    figure = sources(load_report_data(ctx.out))
    names = {trace.name for trace in figure.data}
    assert names == {"real planned", "real accepted", "synthetic planned", "synthetic accepted"}
    real = [t for t in figure.data if t.name == "real accepted"]
    assert len(real) == 5 and all(sum(t.customdata) == 2 for t in real)  # per label: the real half of 4, all accepted


def test_two_corpora_mix_in_under_their_own_names_and_licences(iemocap_like, tmp_path):
    first = ingested(iemocap_like, tmp_path)
    other = read_corpus(iemocap_like / "labels.csv", options(name="other", licence="CC-BY-4.0"))
    write_corpus(other, tmp_path / "other", iemocap_like / "labels.csv", options(name="other", licence="CC-BY-4.0"))
    ctx = make_context(tmp_path, num_dialogues=8, chunk_size=4, ingest={"path": [str(first), str(tmp_path / "other")], "mix": 1.0},
                       distributions={"exchanges": {1: 1.0}, "user_emotion": {"sad": 0.5, "happy": 0.5}})  # fmt: skip
    assert {ctx.planner.spec(i).real_query.corpus for i in range(8)} == {"iemo", "other"}
    assert all(ctx.planner.real.audio_path(ctx.planner.spec(i).real_query).is_file() for i in range(8))
    from empathy_data.stages.export.card import _ingested

    rows = [line for line in _ingested({"corpora": list(ctx.planner.real.summaries)}) if line.startswith("| iemo") or line.startswith("| other")]
    assert [row.split(" | ")[2] for row in rows] == ["test-only", "CC-BY-4.0"]
    with pytest.raises(ConfigError, match="a second corpus named 'iemo'"):
        make_context(tmp_path, ingest={"path": [str(first), str(first)], "mix": 0.5})
