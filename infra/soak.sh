#!/usr/bin/env bash
# `make soak`: the reliability tests (the `reliability_*` modules of the one integration-test binary) in a longer configuration than
# `make test` runs them, against a local stack of their own; their figures are written into
# RELIABILITY.md (between the soak-figures markers). Override any RELIABILITY_* variable, e.g.
# RELIABILITY_SEED=... to replay a run's choices.
set -euo pipefail
source "$(dirname "$0")/own_stack.sh"
export RELIABILITY_CLIENTS="${RELIABILITY_CLIENTS:-24}"
export RELIABILITY_OPS="${RELIABILITY_OPS:-60}"
export RELIABILITY_PHASES="${RELIABILITY_PHASES:-6}"
export RELIABILITY_FUZZ_CASES="${RELIABILITY_FUZZ_CASES:-4000}"
export RELIABILITY_FAULT_CYCLES="${RELIABILITY_FAULT_CYCLES:-3}"

infra/install.sh
tests=(--test integration)
echo "== building the reliability tests"
cargo test -p integration-tests "${tests[@]}" --no-run --quiet

start_own_stack
export RELIABILITY_FIGURES_DIR="$STATE/figures"
echo "== soak: ${RELIABILITY_CLIENTS} clients x ${RELIABILITY_OPS} operations x ${RELIABILITY_PHASES} phases," \
     "${RELIABILITY_FUZZ_CASES} hostile inputs, ${RELIABILITY_FAULT_CYCLES} fault cycles"
started=$SECONDS
RUST_LOG="${RUST_LOG:-error}" cargo test -p integration-tests "${tests[@]}" -- reliability_ --nocapture --test-threads 1
.local/venv/bin/python infra/reliability_figures.py "$RELIABILITY_FIGURES_DIR" RELIABILITY.md "$((SECONDS - started))"
# The schema fuzzer, longer than in `make test`.
infra/fuzz.sh "${FUZZ_EXAMPLES:-300}"
