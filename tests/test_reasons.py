"""Typed reasons (empathy_data/records/reasons.py): built by the checks, counted by kind, and written in the
text form chunk files and rejects/ always had, which reads back to the same Reason."""

import pytest

from empathy_data.records.chunk_records import Exchange
from empathy_data.records.reasons import Reason, raised
from empathy_data.records.schema import Scores

CASES = [
    (Reason(stage="script", check="length", detail="turn 2 too long (80 words)"), "script: length: turn 2 too long (80 words)", "script: length"),
    (Reason(stage="script", check="judge", detail="malformed: no score", exchange=3), "script: exchange 3: judge: malformed: no score", "script: judge"),
    (Reason(stage="filter", check="user.wer"), "user.wer", "user.wer"),
    (Reason(stage="export", check="near_duplicate", detail="the script nearly repeats d-0001"), "near_duplicate: the script nearly repeats d-0001", "near_duplicate"),
    (Reason(stage="export", check="history", detail="exchange 2 was not accepted"), "history: exchange 2 was not accepted", "history"),
    (Reason(stage="export", check="replaced", detail="by round 1"), "replaced: by round 1", "replaced"),
    (raised("llm", ConnectionError("refused: http://127.0.0.1:1/v1")), "llm: ConnectionError: refused: http://127.0.0.1:1/v1", "llm: ConnectionError"),
    (Reason(stage="llm", check="judge", detail="APIError: boom"), "llm: judge: APIError: boom", "llm: judge"),
]  # fmt: skip


@pytest.mark.parametrize(("reason", "text", "kind"), CASES)
def test_text_form_and_kind_and_back(reason, text, kind):
    assert str(reason) == text
    assert reason.kind == kind
    assert Reason.parse(text) == reason


def test_exceptions_are_told_from_verdicts():
    assert raised("tts", RuntimeError("x")).is_exception and raised("speaker", OSError()).is_exception
    assert not Reason(stage="script", check="length").is_exception
    assert not Reason(stage="filter", check="user.wer").is_exception


def test_a_record_keeps_typed_reasons_and_writes_their_text():
    scores = Scores(dialogue_id="d", turn_index=0, verdict="rejected", reasons=[Reason(stage="filter", check="user.wer")])
    exchange = Exchange(index=0, dialogue_id="d", exchange_index=0, verdict="rejected",
                        reasons=scores.reasons, user_scores=scores, assistant_scores=scores)  # fmt: skip
    row = exchange.to_dict()
    assert row["reasons"] == ["user.wer"] and row["user_scores"]["reasons"] == ["user.wer"]
    back = Exchange.model_validate(row)  # as a chunk file is read back (older files too: text only)
    assert back == exchange and isinstance(back.reasons[0], Reason)
