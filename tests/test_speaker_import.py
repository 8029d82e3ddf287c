import numpy as np
import soundfile as sf

from empathy_data.planning.speakers import load_pool
from tests.cli_helpers import run_cli
from tests.helpers import make_context, sine


def clip(path, seconds=4.0, rate=16000, amp=0.3, text="I can't believe it happened."):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, sine(200, seconds, rate, amp), rate)
    if text is not None:
        path.with_suffix(".txt").write_text(text)


def corpus(tmp_path):
    root = tmp_path / "corpus"
    clip(root / "spk1" / "Angry" / "a1.wav")
    clip(root / "spk1" / "Neutral" / "n1.wav")
    clip(root / "spk2" / "sad" / "s1.wav")
    clip(root / "spk2" / "happy" / "h1.flac")
    meta = tmp_path / "speakers.csv"
    meta.write_text("speaker,gender,age_group,language\nspk1,female,adult,en\nspk2,male,elderly,en\n")
    return root, meta


def test_import_writes_a_pool_that_loads_and_builds(tmp_path):
    root, meta = corpus(tmp_path)
    result = run_cli("speakers", "import", str(root), "--meta", str(meta), "--licence", "CC-BY-4.0")
    assert result.returncode == 0, result.stderr
    pool = load_pool(root / "pool.yaml")
    assert [s.id for s in pool.speakers] == ["spk1", "spk2"]
    assert set(pool.speakers[0].clips) == {"angry", "neutral"}
    assert pool.speakers[0].clips["angry"][0].transcript == "I can't believe it happened."
    assert pool.speakers[0].licence == "CC-BY-4.0"
    listing = run_cli("speakers", "list", str(root / "pool.yaml"))
    assert listing.returncode == 0 and "elderly" in listing.stdout and "angry" in listing.stdout
    ctx = make_context(tmp_path, speaker_pool=str(root / "pool.yaml"), distributions={"gender": {"female": 1.0}, "age_group": {"adult": 1.0}})
    spec = ctx.planner.spec(0)
    assert spec.user.id == "spk1" and spec.assistant_voice.id == "spk2"  # the only other voice


def test_every_problem_is_reported_with_its_path_and_nothing_written(tmp_path):
    root, meta = corpus(tmp_path)
    clip(root / "spk1" / "Angry" / "short.wav", seconds=1.0)
    clip(root / "spk1" / "Angry" / "quiet.wav", amp=0.001)
    clip(root / "spk1" / "Angry" / "lowrate.wav", rate=8000)
    clip(root / "spk1" / "Angry" / "notext.wav", text=None)
    (root / "spk1" / "Angry" / "broken.wav").write_bytes(b"RIFFjunk")
    clip(root / "spk1" / "Bored" / "b.wav")
    clip(root / "spk9" / "sad" / "x.wav")
    (root / "spk2" / "sad" / "orphan.txt").write_text("a transcript whose audio is missing")
    meta.write_text(meta.read_text() + "spk3,female,child,en\n")
    result = run_cli("speakers", "import", str(root), "--meta", str(meta))
    assert result.returncode == 2
    for fragment in ("short.wav: 1.0 s", "quiet.wav: silent", "lowrate.wav: sample rate 8000", "notext.wav: no transcript",
                     "broken.wav: does not decode", "Bored: unknown emotion folder", "spk9: speaker not in",
                     "speaker 'spk3' has no folder", "orphan.txt: transcript without audio"):  # fmt: skip
        assert fragment in result.stderr.replace("\n", ""), fragment
    assert not (root / "pool.yaml").exists()


def test_bad_meta_rows_are_reported(tmp_path):
    root, meta = corpus(tmp_path)
    meta.write_text("speaker,gender,age_group\nspk1,robot,adult\nspk2,male,ancient\n")
    result = run_cli("speakers", "import", str(root), "--meta", str(meta))
    assert result.returncode == 2 and "speakers.csv:2: gender 'robot'" in result.stderr
    assert "speakers.csv:3: age_group 'ancient'" in result.stderr


def test_silent_detection_uses_peak(tmp_path):
    path = tmp_path / "z.wav"
    sf.write(path, np.zeros(16000 * 4, np.float32), 16000)
    from empathy_data.planning.speakers import clip_problem as check_clip

    assert "silent" in check_clip(path)
