"""Run `empathy-data build` but SIGKILL the process at a chosen point inside export (test helper).

usage: python -m tests.kill_in_export POINT CONFIG
POINT: "shards" (inside the first chunk's export task, after its first split's part is finished, before
the chunk's parts are published) or "card" (after data/ and rejects/ are in place, before the card and
manifest are written).
"""

import os
import signal
import sys

import empathy_data.stages.export.exporter as exporter
from empathy_data.cli import main


def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


point, config = sys.argv[1], sys.argv[2]
if point == "shards":
    original = exporter.ShardWriter.finish
    calls = {"n": 0}

    def finish_then_die(self):
        calls["n"] += 1
        if calls["n"] == 2:
            die()
        return original(self)

    exporter.ShardWriter.finish = finish_then_die
else:
    exporter.dataset_card = die
sys.argv = ["empathy-data", "build", config]
main()
