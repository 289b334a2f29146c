#!/usr/bin/env bash
# `make redrive`: the redrive tool against the `make dev` stack (LocalStack on :4566 unless
# LS_PORT says otherwise). Against AWS, run `cargo run -p dev-server --bin redrive -- ...` with
# your AWS credentials instead (see docs/events.md, "Dead letters and redrive").
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
source infra/env.sh
export AWS_ENDPOINT_URL="http://127.0.0.1:${LS_PORT:-4566}"
cargo build --quiet -p dev-server --bin redrive
exec target/debug/redrive "$@"
