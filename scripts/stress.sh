#!/usr/bin/env bash
# make stress: the Go suite STRESS_COUNT times (-count) and the playbook suite
# STRESS_ROUNDS times, under a parallel CPU load: one busy loop per core,
# started here and ended here by pid (nothing else is signalled). Not in CI.
# STRESS_ROUNDS=0 skips the playbook suite.
set -euo pipefail

: "${STRESS_COUNT:=20}" "${STRESS_ROUNDS:=3}" "${GO:=go}"
: "${PYTEST:=.venv/bin/python -m pytest}" "${PYTEST_ARGS:=}"

load_pids=()
stop_load() {
  if [ ${#load_pids[@]} -gt 0 ]; then
    kill "${load_pids[@]}" 2>/dev/null || true
    wait "${load_pids[@]}" 2>/dev/null || true
  fi
}
trap stop_load EXIT

cores=$(nproc)
for _ in $(seq "$cores"); do
  ( while :; do :; done ) &
  load_pids+=("$!")
done
echo "stress: ${cores} busy loops (pids ${load_pids[*]}); Go suite x${STRESS_COUNT}, playbook suite x${STRESS_ROUNDS}"

# -count multiplies each package's run time (cmd/valkeyops's soak alone is about
# a minute per run under this load): go test's default 10 min timeout would
# fire on a slow package, not on a hang. STRESS_COUNT=0 skips the Go suite.
if [ "$STRESS_COUNT" -gt 0 ]; then
  start=$SECONDS
  VALKEYOPS_REQUIRE_SERVER=1 $GO test -count="$STRESS_COUNT" -timeout "${STRESS_GO_TIMEOUT:-3h}" ./...
  echo "stress: Go suite x${STRESS_COUNT} passed in $((SECONDS - start))s"
fi

for round in $(seq "$STRESS_ROUNDS"); do
  start=$SECONDS
  # shellcheck disable=SC2086 # PYTEST and PYTEST_ARGS are word lists
  $PYTEST -q tests/integration $PYTEST_ARGS
  echo "stress: playbook suite round ${round}/${STRESS_ROUNDS} passed in $((SECONDS - start))s"
done
