#!/usr/bin/env bash
# `make audit`: the consistency audit against the `make dev` stack (DynamoDB Local on :8000 and
# LocalStack on :4566 unless DDB_PORT / LS_PORT say otherwise): prints the report, announces each
# drifting item as InventoryDriftDetected, exits 1 when something drifts. Against AWS, run
# `cargo run -p dev-server --bin audit` with your AWS credentials and TABLE_NAME instead.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
source infra/env.sh
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:${DDB_PORT:-8000}"
export AWS_ENDPOINT_URL="http://127.0.0.1:${LS_PORT:-4566}"
if ! (exec 3<>"/dev/tcp/127.0.0.1/${DDB_PORT:-8000}") 2>/dev/null; then
  echo "error: no DynamoDB Local on 127.0.0.1:${DDB_PORT:-8000}: start the stack with 'make dev' first" >&2
  exit 2
fi
cargo build --quiet -p dev-server --bin audit
RUST_LOG="${RUST_LOG:-warn}" exec target/debug/audit "$@"
