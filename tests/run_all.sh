#!/usr/bin/env bash
# All three test tiers, as CI runs them (README, "Run the tests"): lint, then the unit tier beside the
# integration and slow lanes (tests/run_lanes.sh). The lanes run on cores of their own and wait on processes
# starting and stopping for about a third of their time; the unit tier runs niced (two pytest-xdist workers)
# and takes those waits, so it adds little to the lanes' time. Each part's log is printed when all have
# ended; the script fails when any part fails. Alone, the unit tier is `pytest -n 2` (under 3 minutes).
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${VENV_BIN:-.venv/bin}
"$bin/ruff" check . && "$bin/lint-imports" || exit 1
work=$(mktemp -d)
started=$SECONDS
nice -n 19 "$bin/pytest" -n 2 >"$work/unit.log" 2>&1 &
unit=$!
bash tests/run_lanes.sh >"$work/lanes.log" 2>&1
lanes_status=$?
lanes_done=$((SECONDS - started))
wait "$unit"
unit_status=$?
echo "===== unit tier (niced beside the lanes; done at $((SECONDS - started)) s)"
cat "$work/unit.log"
echo "===== integration and slow lanes (done at $lanes_done s)"
cat "$work/lanes.log"
[ "$unit_status" -eq 0 ] && [ "$lanes_status" -eq 0 ]
