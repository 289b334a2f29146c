#!/usr/bin/env bash
# The schema fuzzer (Schemathesis, every check on, positive and negative data) against the local
# server, on a stack of its own: what `openapi.json` says must be what the server does, both ways.
#   infra/fuzz.sh [MAX_EXAMPLES]   (default 25 per operation; `make soak` runs more)
#   FUZZ_REPORT=1 infra/fuzz.sh     also writes every request and answer as HAR to .local/fuzz-report/
# Exit 1 and a report of every failure if it finds any. Run by `make test` and `make soak`.
set -euo pipefail
source "$(dirname "$0")/own_stack.sh"
examples="${1:-${FUZZ_EXAMPLES:-25}}"
infra/install.sh stack
cargo build --quiet -p dev-server --bin dev-server
start_own_stack
port="$(free_port)"
export TABLE_NAME="fuzz" PORT="$port" SWEEP_INTERVAL_SECONDS=3600 RUST_LOG="${RUST_LOG:-error}"
# The server's log stays in .local/ after the run, for a failure's diagnosis.
log=.local/fuzz-server.log
target/debug/dev-server --seed > "$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; infra/stack.sh stop "$STATE"; rm -rf "$STATE"' EXIT
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  kill -0 $server 2>/dev/null || break
  sleep 0.5
done
curl -sf "http://127.0.0.1:$port/health" >/dev/null || { echo "the local server did not start:"; tail -20 "$log"; exit 1; }
echo "== schema fuzz: Schemathesis, every check, $examples examples per operation"
# One worker: with two, Hypothesis describes its lambdas by `ast.parse` from both threads at once,
# which CPython 3.11 can fail with "SystemError: AST constructor recursion depth mismatch" (a crash
# of the tool, seen once in three runs, not a finding about the API).
.local/fuzz/bin/st run openapi.json --url "http://127.0.0.1:$port" --checks all --mode all \
  --max-examples "$examples" --seed "${FUZZ_SEED:-20261125}" --workers 1 --request-timeout 15 \
  --generation-deterministic --no-color ${FUZZ_REPORT:+--report har --report-dir .local/fuzz-report}
