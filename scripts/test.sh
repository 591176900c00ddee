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

# The storage suite gives each PostgreSQL test a schema of its own; clear them away.
if [ "${ANTWORT_TEST_POSTGRES:-}" != skip ] && command -v psql >/dev/null 2>&1; then
  PG_URL="${ANTWORT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
  psql "$PG_URL" -Atc "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 't\_%'" |
    while read -r schema; do psql "$PG_URL" -qc "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1; done || true
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

step "official SDK suites (Python, TypeScript) against the real binaries, SQLite storage"
VENV="$VENV" bash tests/sdk/run.sh

step "official SDK suites again, PostgreSQL storage"
if [ "${ANTWORT_TEST_POSTGRES:-}" = skip ]; then
  echo "!!! PostgreSQL SDK run SKIPPED (ANTWORT_TEST_POSTGRES=skip) !!!"
else
  PG_URL="${ANTWORT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
  schema="sdk_$(date +%s)_$$"
  psql "$PG_URL" -qc "CREATE SCHEMA $schema"
  trap 'psql "$PG_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true' EXIT
  SDK_STORAGE=postgres SDK_STORAGE_DSN="$PG_URL?options=-c%20search_path%3D$schema" VENV="$VENV" bash tests/sdk/run.sh
fi
