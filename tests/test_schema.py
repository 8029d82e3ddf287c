from empathy_data.records.schema import DialogueSpec, Outcome, Scores, Script, ScriptTurn, Speaker, Utterance
from tests.helpers import make_context


def test_every_record_round_trips(tmp_path):
    spec = make_context(tmp_path).planner.spec(0)
    script = Script(
        spec=spec,
        turns=[ScriptTurn(role=t.role, text=f"text {i}") for i, t in enumerate(spec.turns)],
        reasoning=["why"] * spec.num_exchanges,
        llm={"model": "m", "seed": 1},
    )
    utt = Utterance(
        dialogue_id=spec.dialogue_id, turn_index=0, role="user", text="hi", speaker_id=spec.user.id,
        emotion="sad", response_style=None, audio_path="a.flac", sample_rate=16000, duration=1.2, tts={"b": 1},
    )  # fmt: skip
    scores = Scores(dialogue_id=spec.dialogue_id, turn_index=0, wer=0.1, checks={"wer": "pass"}, verdict="accepted")
    outcome = Outcome(
        dialogue_id=spec.dialogue_id, index=0, stage="script", verdict="rejected", reasons=["x"], spec=spec
    )
    for record in (spec, spec.user, script, utt, scores, outcome):
        data = record.to_dict()
        copy = dict(data)
        assert type(record).from_dict(data) == record
        assert data == copy  # from_dict does not mutate its input
    assert isinstance(Speaker.from_dict(spec.user.to_dict()), Speaker)
    assert DialogueSpec.from_dict(spec.to_dict()).num_exchanges == spec.num_exchanges
