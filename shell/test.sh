#!/usr/bin/env bash
# Full check: tools, formatting, lints, tests. Extra arguments go to `cargo test`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

"$ROOT/shell/ensure-tools.sh"
export RTDP_PYTHON="$ROOT/.tools/venv/bin/python"

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace "$@"
