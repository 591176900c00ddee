#!/usr/bin/env bash
# The whole test suite: formatting, lints, Rust unit, snapshot and black-box tests,
# then the official OpenAI SDKs (Python and TypeScript) against the real binaries.
# Installs the SDK test dependencies into .venv and tests/sdk/ts/node_modules when
# they are missing; nothing else is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

step "Rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  # nextest does not run doc tests; the crates have none, but keep them honest.
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked
fi

step "SDK test dependencies"
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import openai, pytest" >/dev/null 2>&1; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/sdk/python/requirements.txt
fi
if [ ! -d tests/sdk/ts/node_modules ]; then
  npm ci --prefix tests/sdk/ts --no-audit --no-fund --loglevel=error
fi

step "build the binaries"
cargo build --locked -p antwort -p antwort-mock

step "official SDK suites (Python, TypeScript) against the real binaries"
VENV="$VENV" bash tests/sdk/run.sh
