#!/usr/bin/env bash
# The integration and slow tiers as CI runs them: their two lanes (tests/conftest.py, LANES) at once, each
# in its own pytest process with its own temporary folder; each lane's log is printed when both have
# ended, and the script fails when either lane fails. Extra arguments go to both pytest runs.
set -uo pipefail
cd "$(dirname "$0")/.."
pytest=${PYTEST:-.venv/bin/pytest}
work=$(mktemp -d)
lanes=(models machinery)
pids=()
for lane in "${lanes[@]}"; do
  "$pytest" --tier integration --tier slow --lane "$lane" --basetemp "$work/tmp-$lane" "$@" >"$work/$lane.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
  wait "$pid" || status=1
done
for lane in "${lanes[@]}"; do
  echo "===== lane: $lane"
  cat "$work/$lane.log"
done
exit $status
