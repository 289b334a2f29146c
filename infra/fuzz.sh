#!/usr/bin/env bash
# The schema fuzzer (Schemathesis, every check on, positive and negative data) against the local
# server, on a stack of its own: what `openapi.json` says must be what the server does, both ways.
#   infra/fuzz.sh [MAX_EXAMPLES]   (default 25 per operation; `make soak` runs more)
# Exit 1 and a report of every failure if it finds any. Run by `make test` and `make soak`.
set -euo pipefail
source "$(dirname "$0")/own_stack.sh"
examples="${1:-${FUZZ_EXAMPLES:-25}}"
infra/install.sh stack
cargo build --quiet -p dev-server --bin dev-server
start_own_stack
port="$(free_port)"
export TABLE_NAME="fuzz" PORT="$port" SWEEP_INTERVAL_SECONDS=3600 RUST_LOG="${RUST_LOG:-error}"
target/debug/dev-server --seed > "$STATE/dev-server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; infra/stack.sh stop "$STATE"; rm -rf "$STATE"' EXIT
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  kill -0 $server 2>/dev/null || { cat "$STATE/dev-server.log"; exit 1; }
  sleep 0.5
done
echo "== schema fuzz: Schemathesis, every check, $examples examples per operation"
.local/fuzz/bin/st run openapi.json --url "http://127.0.0.1:$port" --checks all --mode all \
  --max-examples "$examples" --seed "${FUZZ_SEED:-20261125}" --workers 2 --request-timeout 15 \
  --generation-deterministic --no-color
