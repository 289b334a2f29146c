#!/usr/bin/env bash
# `make package`: builds every function under functions/ for Lambda (provided.al2023, arm64) with
# cargo-lambda (zig as the cross linker), zips each as Lambda wants it (target/lambda/<fn>/
# bootstrap.zip), and writes a table of binary and zip sizes to target/lambda/sizes.md.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
infra/install.sh package
export PATH="$ROOT/.local/tools/bin:$PATH"

functions=()
for manifest in functions/*/Cargo.toml; do functions+=("$(basename "$(dirname "$manifest")")"); done
packages=()
for f in "${functions[@]}"; do packages+=(-p "$f"); done

echo "== cargo lambda build --release --arm64 (${#functions[@]} functions)"
cargo lambda build --release --arm64 --output-format zip "${packages[@]}"

OUT=target/lambda/sizes.md
limit=$((5 * 1024 * 1024))
over=0
{
  echo "| function | binary (bytes) | zip (bytes) | zip |"
  echo "|---|---:|---:|---:|"
  for f in "${functions[@]}"; do
    bin="target/aarch64-unknown-linux-gnu/release/$f"
    zip="target/lambda/$f/bootstrap.zip"
    [ -f "$bin" ] && [ -f "$zip" ] || { echo "error: $f was not built ($bin, $zip)" >&2; exit 1; }
    bin_size=$(stat -c %s "$bin")
    zip_size=$(stat -c %s "$zip")
    [ "$zip_size" -lt "$limit" ] || over=$((over + 1))
    printf '| %s | %s | %s | %s MB |\n' "$f" "$bin_size" "$zip_size" "$(awk -v z="$zip_size" 'BEGIN { printf "%.2f", z / 1048576 }')"
  done
} > "$OUT"
echo
echo "Built on $(uname -m) for aarch64-unknown-linux-gnu, $(rustc --version), release profile of Cargo.toml"
cat "$OUT"
echo "(written to $OUT)"
if [ "$over" -gt 0 ]; then
  echo "warning: $over zip(s) are 5 MB or more" >&2
fi
