#!/usr/bin/env bash
# The integration and slow tiers as CI runs them: their two lanes (tests/conftest.py, LANES) at once, each
# in its own pytest process with its own temporary folder; each lane's log is printed when both have
# ended, and the script fails when either lane fails. Extra arguments go to both pytest runs.
# With at least as many cores as lanes, each lane runs on cores of its own (taskset): a build's thread
# budget (runner.cpus, default this process's affinity) then sizes its models to its lane's cores, and the
# two lanes' models never take turns on one core.
set -uo pipefail
cd "$(dirname "$0")/.."
pytest=${PYTEST:-.venv/bin/pytest}
work=$(mktemp -d)
lanes=(models machinery)
pids=()
cores=($(python3 -c 'import os; print(*sorted(os.sched_getaffinity(0)))'))
pin() {  # pin INDEX: the taskset prefix of lane INDEX, or nothing
  local per=$(( ${#cores[@]} / ${#lanes[@]} ))
  if [ "$per" -ge 1 ] && command -v taskset >/dev/null; then
    local mine=("${cores[@]:$(( $1 * per )):$per}")
    local list="${mine[*]}"
    echo taskset -c "${list// /,}"
  fi
}
for i in "${!lanes[@]}"; do
  lane=${lanes[$i]}
  $(pin "$i") "$pytest" --tier=integration --tier=slow --lane="$lane" --basetemp="$work/tmp-$lane" "$@" >"$work/$lane.log" 2>&1 &
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
