#!/usr/bin/env bash
# `make test`: every test, against a local stack of its own (fresh state directory, free ports),
# so it runs beside `make dev`. The stack is stopped however the tests end.
set -euo pipefail
source "$(dirname "$0")/own_stack.sh"

# What the tests need (DynamoDB Local, LocalStack, the fuzzer) is installed while the lints run:
# mostly downloads, beside clippy's compiling. The lints install the template tools themselves.
mkdir -p .local
infra/install.sh runtime > .local/install-runtime.log 2>&1 &
installing=$!
make --no-print-directory lint lint-template || { wait "$installing" || true; exit 1; }
if ! wait "$installing"; then
  cat .local/install-runtime.log >&2
  echo "error: installing the local stack failed (above)" >&2
  exit 1
fi
cat .local/install-runtime.log
infra/install.sh
echo "== building tests"
cargo test --workspace --no-run --quiet

start_own_stack
# The IAM gate records here every grant a function's call was allowed by (tests and the fuzz).
export IAM_USAGE_FILE="$STATE/iam-used.jsonl"
# `make sam-env`'s files, which a test checks against the local runtime's own resolution.
.local/template/bin/python infra/sam_env.py

echo "== tests"
LOG="$STATE/cargo-test.log"
set +e
RUST_LOG="${RUST_LOG:-error}" cargo test --workspace --no-fail-fast 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
# The schema fuzzer against the local server (a short run; `make soak` runs a longer one).
infra/fuzz.sh "${FUZZ_EXAMPLES:-25}" 2>&1 | tee "$STATE/fuzz.log"
fuzz=${PIPESTATUS[0]}
# Least privilege both ways: every grant of template.yaml was used by some call (PERMISSIONS.md).
partial=(); { [ "$status" -eq 0 ] && [ "$fuzz" -eq 0 ]; } || partial=(--partial)
.local/template/bin/python infra/iam_usage.py "$IAM_USAGE_FILE" "${partial[@]}" 2>&1 | tee "$STATE/iam-usage.log"
grants=${PIPESTATUS[0]}
set -e
# One closing line over every test binary (cargo prints one "test result" per binary), the schema
# fuzz counted as one test.
awk -v fuzz="$fuzz" -v grants="$grants" '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { if (fuzz == 0) p++; else f++; if (grants == 0) p++; else f++; printf "%d passed, %d failed\n", p, f }' "$LOG"
[ "$status" -eq 0 ] && [ "$fuzz" -eq 0 ] && [ "$grants" -eq 0 ]
