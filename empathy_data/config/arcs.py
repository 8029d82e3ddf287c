"""Emotion arcs: how a user's emotion moves from one exchange to the next, as a transition matrix.

A row gives the next emotion's weights given the current one; an emotion without a row stays as it is.
The first exchange's emotion comes from `distributions.user_emotion`; the arc decides the rest.
"""

from __future__ import annotations

Matrix = dict[str, dict[str, float]]

ARCS: dict[str, Matrix] = {
    # the same emotion throughout (the default: a dialogue is about one feeling)
    "steady": {},
    # an upset user calms down as the assistant answers
    "de-escalating": {
        "angry": {"angry": 0.4, "neutral": 0.6},
        "fearful": {"fearful": 0.5, "neutral": 0.5},
        "sad": {"sad": 0.6, "neutral": 0.4},
        "disgusted": {"disgusted": 0.5, "neutral": 0.5},
        "surprised": {"surprised": 0.5, "neutral": 0.5},
    },
    # frustration builds up
    "escalating": {
        "neutral": {"neutral": 0.5, "angry": 0.3, "fearful": 0.2},
        "sad": {"sad": 0.7, "angry": 0.3},
        "fearful": {"fearful": 0.7, "angry": 0.3},
        "disgusted": {"disgusted": 0.6, "angry": 0.4},
    },
    # a sad or frightened user ends hopeful
    "recovering": {
        "sad": {"sad": 0.3, "neutral": 0.4, "happy": 0.3},
        "fearful": {"fearful": 0.3, "neutral": 0.5, "happy": 0.2},
        "angry": {"angry": 0.5, "neutral": 0.5},
        "disgusted": {"disgusted": 0.5, "neutral": 0.5},
    },
}


def arc_matrix(arc: str | Matrix) -> Matrix:
    return ARCS[arc] if isinstance(arc, str) else arc


def arc_name(arc: str | Matrix) -> str:
    return arc if isinstance(arc, str) else "custom"
