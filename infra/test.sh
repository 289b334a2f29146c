#!/usr/bin/env bash
# `make test`: every test, against a local stack of its own (fresh state directory, free ports),
# so it runs beside `make dev`. The stack is stopped however the tests end.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
source infra/env.sh
export TABLE_NAME="test-unused" EVENT_BUS_NAME="inventory-events"

infra/install.sh
echo "== building tests"
cargo test --workspace --no-run --quiet

free_port() { .local/venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
DDB_PORT="$(free_port)"
LS_PORT="$(free_port)"
STATE="$(mktemp -d "$ROOT/.local/test-XXXXXX")"
cleanup() { infra/stack.sh stop "$STATE"; rm -rf "$STATE"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
DDB_SHARED=0 infra/stack.sh start "$STATE" "$DDB_PORT" "$LS_PORT"
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$DDB_PORT"
export AWS_ENDPOINT_URL="http://127.0.0.1:$LS_PORT"
.local/venv/bin/python infra/create_resources.py

echo "== tests"
LOG="$STATE/cargo-test.log"
set +e
RUST_LOG="${RUST_LOG:-error}" cargo test --workspace 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
# One closing line over every test binary (cargo prints one "test result" per binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$LOG"
exit "$status"
