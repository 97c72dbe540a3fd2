#!/usr/bin/env bash
# Full check: tools, formatting, lints, tests, then every script in shell/checks/ (deployment
# files, ops scripts, monitoring). Extra arguments go to `cargo test`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

"$ROOT/shell/ensure-tools.sh"
export RTDP_PYTHON="$ROOT/.tools/venv/bin/python"

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace "$@"

# Checks that are not cargo tests (lints of Docker/compose/YAML/shell files, promtool, the ops
# scripts against a local stack). Each is a script that exits non-zero on failure; they run
# after `cargo test` so the debug binaries they use are built.
shopt -s nullglob
for check in "$ROOT"/shell/checks/*.sh; do
    echo "== check: ${check#"$ROOT"/}" >&2
    "$check"
done
