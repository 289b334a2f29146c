# Sourced by test.sh, bench.sh and soak.sh: `start_own_stack` starts DynamoDB Local (one database
# per access key, no -sharedDb) and LocalStack on free ports in a fresh state directory, creates
# the resources, exports the endpoints, and stops it all when the script exits. Sourcing it also
# moves to the repository root and loads the local defaults (env.sh).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source infra/env.sh
# Tests and the bench make tables of their own; these names are never used.
export TABLE_NAME="unused-by-tests" EVENT_BUS_NAME="inventory-events"
free_port() { .local/venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start_own_stack() {
  # What runs is what template.yaml deploys (dev_server::LocalRuntime reads it from here).
  .local/template/bin/python infra/topology.py
  # The same template as a shop that names its order service deploys it (tests/tests/iam.rs).
  .local/template/bin/python infra/topology.py --out .local/topology-order-service.json \
    --parameter OrderEventPublishers=arn:aws:iam::000000000000:role/order-service
  DDB_PORT="$(free_port)"
  LS_PORT="$(free_port)"
  STATE="$(mktemp -d "$ROOT/.local/run-XXXXXX")"
  trap 'infra/stack.sh stop "$STATE"; rm -rf "$STATE"' EXIT
  trap 'exit 130' INT TERM
  DDB_SHARED=0 infra/stack.sh start "$STATE" "$DDB_PORT" "$LS_PORT"
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$DDB_PORT"
  export AWS_ENDPOINT_URL="http://127.0.0.1:$LS_PORT"
  .local/venv/bin/python infra/create_resources.py
}
