import pyarrow.parquet as pq

from empathy_data.stages.export.rows import features
from empathy_data.stages.export.shards import ShardWriter
from empathy_data.stages.export.splits import split_of


def test_split_is_deterministic_and_follows_weights():
    weights = {"train": 0.8, "validation": 0.1, "test": 0.1}
    ids = [f"dlg-{i}" for i in range(5000)]
    first = [split_of(d, weights) for d in ids]
    assert first == [split_of(d, weights) for d in ids]
    assert abs(first.count("train") / 5000 - 0.8) < 0.03


def test_shard_writer_rolls_and_names_shards(tmp_path):
    feats = features(16000, with_audio=False, with_verdict=True)
    writer = ShardWriter(tmp_path, "rejects", feats, rows_per_shard=4, group_rows=3)
    for i in range(10):
        writer.write({name: None for name in feats} | {"dialogue_id": f"d{i}", "exchange_index": 0, "reasons": ["x"]})
    shards = writer.finish()
    assert [s["file"] for s in shards] == [f"rejects-0000{i}-of-00003.parquet" for i in range(3)]
    assert [s["rows"] for s in shards] == [4, 4, 2]
    ids = [r for s in shards for r in pq.read_table(tmp_path / s["file"]).column("dialogue_id").to_pylist()]
    assert ids == [f"d{i}" for i in range(10)]
    assert b"huggingface" in pq.read_schema(tmp_path / shards[0]["file"]).metadata


def test_speaker_disjoint_split_keys():
    from empathy_data.records.schema import DialogueSpec, Speaker, TurnPlan
    from empathy_data.stages.export.splits import split_key, split_of

    speaker = Speaker(id="spk-a", gender="female", age_group="adult", language="en")
    turns = [TurnPlan(role="user", emotion="sad"), TurnPlan(role="assistant", response_style="comforting")]

    def spec(i: int) -> DialogueSpec:
        return DialogueSpec(dialogue_id=f"dlg-{i}", index=i, language="en", scenario="s", scenario_text="s",
                            user=speaker, assistant_voice=speaker, turns=turns)  # fmt: skip

    weights = {"train": 0.5, "validation": 0.25, "test": 0.25}
    by_speaker = {split_of(split_key("speaker", spec(i)), weights) for i in range(50)}
    by_dialogue = {split_of(split_key("dialogue", spec(i)), weights) for i in range(50)}
    assert len(by_speaker) == 1 and by_dialogue == set(weights)
