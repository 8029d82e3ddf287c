"""Records passed between stages. Small, immutable, linked by dialogue_id, JSON round-trippable."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from empathy_data.records.reasons import Reasons


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        return cls.model_validate(data)


class ReferenceClip(Record):
    path: str  # relative to the speaker pool's directory, so a moved pool is the same pool
    transcript: str
    sha256: str | None = None  # the clip's content: an edited clip changes the plan


class Speaker(Record):
    id: str
    gender: Literal["female", "male"]
    age_group: Literal["child", "teen", "young_adult", "adult", "elderly"]
    language: str
    source: str = "espeak-ng"
    licence: str = "GPL-3.0-or-later (espeak-ng voice data)"
    # Voice parameters for parametric TTS (espeak: voice, variant, pitch, range, rate).
    voice: dict[str, Any] = Field(default_factory=dict)
    # Reference clips per emotion for cloning TTS backends.
    clips: dict[str, list[ReferenceClip]] = Field(default_factory=dict)


class RealQuery(Record):
    """A recorded user query from an ingested corpus (`empathy-data ingest`): a dialogue planned on it keeps
    the recording and its transcript as the user's turn, and only the reply is written and rendered."""

    id: str  # unique within the ingested corpus
    corpus: str
    audio: str  # relative to the ingested corpus's directory
    transcript: str
    sha256: str


class ContrastVariant(Record):
    """Who says a contrast group's words, and how: one member of the group."""

    gender: str
    age_group: str
    emotion: str


class ContrastRole(Record):
    """A dialogue's place in a contrast group: K one-exchange dialogues whose user says the same words, in K
    planned emotions and/or K voices of other genders and ages, each with its own reply (config.contrast).
    Member 0 writes the words; the others get them (`user_text`) once it has, and write only their reply."""

    group_id: str
    member: int
    by: Literal["emotion", "speaker", "both"]
    variants: list[ContrastVariant]  # every member's, in member order
    anchor_speaker: str  # member 0's user: the group's split unit when export splits by speaker
    user_text: str | None = None  # member > 0: the group's words, filled in by the script stage


class TurnPlan(Record):
    role: Literal["user", "assistant"]
    emotion: str | None = None  # user turns
    response_style: str | None = None  # assistant turns


class DialogueSpec(Record):
    dialogue_id: str
    index: int
    language: str
    scenario: str
    scenario_text: str
    user: Speaker
    assistant_voice: Speaker
    turns: list[TurnPlan]
    real_query: RealQuery | None = None  # the user's turn is this recording (one exchange)
    contrast: ContrastRole | None = None  # one member of a contrast group (one exchange)

    @property
    def source(self) -> str:
        return "synthetic" if self.real_query is None else "real"

    @property
    def given_user_text(self) -> str | None:
        """The user's words when they are not the writer's to choose: a recording's transcript, or the words
        of this dialogue's contrast group. The writer then writes only the reply."""
        if self.real_query is not None:
            return self.real_query.transcript
        return self.contrast.user_text if self.contrast is not None else None

    @property
    def awaits_group_text(self) -> bool:
        """A contrast member whose group's words are not written yet."""
        return self.contrast is not None and self.contrast.member > 0 and self.contrast.user_text is None

    @property
    def num_exchanges(self) -> int:
        return len(self.turns) // 2


class ScriptTurn(Record):
    role: Literal["user", "assistant"]
    text: str


class Script(Record):
    spec: DialogueSpec
    turns: list[ScriptTurn]
    # One note per assistant turn: what the user said, how they sound, why this reply style.
    reasoning: list[str]
    llm: dict[str, Any]
    # Script-stage judges: the judge's scores and one-line rationales per criterion, the topic similarity
    # and the sentence embedding (float16, base64) that export's semantic near-duplicate check reads.
    quality: dict[str, Any] = Field(default_factory=dict)
    # check -> [passed, failed] over every attempt this round made at the dialogue (the card's pass rates)
    checks: dict[str, list[int]] = Field(default_factory=dict)
    # Set when the script stopped short: the exchanges after the written ones were never written, for
    # these reasons (a dialogue written exchange by exchange keeps what it had passed; see `num_written`).
    unwritten: Reasons = Field(default_factory=list)

    @property
    def num_written(self) -> int:
        """Exchanges the script holds: all the spec plans, unless it stopped short (`unwritten`)."""
        return len(self.reasoning)


RECORDING = "recording"  # Utterance.tts["backend"] of a turn that is an ingested recording, not rendered


class Utterance(Record):
    """One synthesized turn. Audio lives in a file in the chunk store, never in the record."""

    dialogue_id: str
    turn_index: int
    role: Literal["user", "assistant"]
    text: str
    speaker_id: str
    emotion: str | None
    response_style: str | None
    audio_path: str
    reference_audio_path: str | None = None
    sample_rate: int
    duration: float
    tts: dict[str, Any]

    @property
    def recorded(self) -> bool:
        """A real recording (an ingested query), not a TTS rendering."""
        return self.tts.get("backend") == RECORDING


Verdict = Literal["accepted", "rejected", "failed"]


class Scores(Record):
    dialogue_id: str
    turn_index: int
    asr_text: str | None = None
    wer: float | None = None
    cer: float | None = None
    emotion_pred: str | None = None
    emotion_prob: float | None = None
    arousal_shift: float | None = None
    duration: float | None = None
    silence_ratio: float | None = None
    speaker_consistency: float | None = None  # to the same role's other turns of the dialogue
    speaker_similarity: float | None = None  # to the speaker's reference clip (cloning TTS)
    voice_similarity: float | None = None  # user vs assistant voice (on assistant turns)
    mos: float | None = None
    checks: dict[str, Literal["pass", "fail"]] = Field(default_factory=dict)
    verdict: Verdict
    reasons: Reasons = Field(default_factory=list)


class Outcome(Record):
    """How one planned dialogue ended at some stage when it did not go on (rejected or failed)."""

    dialogue_id: str
    index: int
    stage: str
    verdict: Literal["rejected", "failed"]
    reasons: Reasons
    spec: DialogueSpec
    script: Script | None = None
    # A dialogue written exchange by exchange that stalled: the exchanges it had passed (a shorter
    # Script). The next regeneration round goes on from them instead of starting over.
    draft: Script | None = None
    checks: dict[str, list[int]] = Field(default_factory=dict)  # as Script.checks
