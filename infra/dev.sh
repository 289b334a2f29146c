#!/usr/bin/env bash
# `make dev`: install what is missing, start DynamoDB Local (:8000) and LocalStack (:4566), create
# the resources, seed demo stock and serve the HTTP API on 127.0.0.1:3000 until Ctrl-C, then stop
# the stack.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
source infra/env.sh
DDB_PORT="${DDB_PORT:-8000}"
LS_PORT="${LS_PORT:-4566}"
export PORT="${PORT:-3000}"
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$DDB_PORT"
export AWS_ENDPOINT_URL="http://127.0.0.1:$LS_PORT"
STATE="$ROOT/.local/dev"

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "error: port $PORT on 127.0.0.1 is already in use (another 'make dev'?). Stop it, or run: PORT=3001 make dev" >&2
  exit 1
fi
infra/install.sh
# What runs is what template.yaml deploys: each function's routes, environment, schedule, event
# source mapping and IAM policy (dev_server::LocalRuntime reads them from here).
.local/template/bin/python infra/topology.py
echo "building the local server ..."
cargo build --quiet -p dev-server
infra/stack.sh start "$STATE" "$DDB_PORT" "$LS_PORT"
trap 'infra/stack.sh stop "$STATE"; echo "local stack stopped"' EXIT
trap 'exit 130' INT TERM
.local/venv/bin/python infra/create_resources.py
target/debug/dev-server --seed
