#!/usr/bin/env bash
# The whole test suite: formatting, lints, Rust unit, snapshot and black-box tests,
# then the official OpenAI SDKs (Python and TypeScript) and a Codex CLI session
# against the real binaries. Installs the SDK and Codex test dependencies into
# .venv, tests/sdk/ts/node_modules and tests/codex/node_modules when they are
# missing; nothing else is installed.
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
  # The black-box suite again with the gateway speaking the Responses API to
  # the mock: every feature must work on both backend protocols.
  step "black-box tests over the Responses protocol"
  ANTWORT_TEST_BACKEND_PROTOCOL=responses cargo nextest run -p antwort --test blackbox --locked --no-fail-fast
  # nextest does not run doc tests; the crates have none, but keep them honest.
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked
  ANTWORT_TEST_BACKEND_PROTOCOL=responses cargo test -p antwort --test blackbox --locked
fi

# The storage suite gives each PostgreSQL test a schema of its own; clear them away.
if [ "${ANTWORT_TEST_POSTGRES:-}" != skip ] && command -v psql >/dev/null 2>&1; then
  PG_URL="${ANTWORT_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
  psql "$PG_URL" -Atc "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 't\_%'" |
    while read -r schema; do psql "$PG_URL" -qc "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1; done || true
fi

step "fuzz targets (cargo fuzz, ${ANTWORT_FUZZ_SECONDS:-30} s each)"
# libFuzzer needs the nightly toolchain and cargo-fuzz: installed when missing
# and installable, and said so when not. The seeds (fuzz/seeds/) are committed;
# what a run adds goes to fuzz/corpus/, which is not.
fuzz_seconds="${ANTWORT_FUZZ_SECONDS:-30}"
if [ "${ANTWORT_FUZZ:-}" = skip ]; then
  echo "!!! fuzzing SKIPPED (ANTWORT_FUZZ=skip) !!!"
elif ! rustup run nightly rustc --version >/dev/null 2>&1 &&
  ! timeout 600 rustup toolchain install nightly --profile minimal >/dev/null 2>&1; then
  echo "!!! fuzzing SKIPPED: the nightly toolchain is not installed and cannot be installed here !!!"
elif ! cargo fuzz --version >/dev/null 2>&1 &&
  ! timeout 900 cargo install cargo-fuzz --locked >/dev/null 2>&1; then
  echo "!!! fuzzing SKIPPED: cargo-fuzz is not installed and cannot be installed here !!!"
else
  for target in request_parsing backend_sse responses_events list_query; do
    mkdir -p "fuzz/corpus/$target"
    log="fuzz/corpus/$target.log"
    if ! cargo +nightly fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
      -max_total_time="$fuzz_seconds" -print_final_stats=1 >"$log" 2>&1; then
      tail -n 40 "$log"
      echo "fuzz target $target failed; the input is in fuzz/artifacts/$target"
      exit 1
    fi
    echo "$target: $(grep -E '^stat::number_of_executed_units' "$log" | tr -s ' ' | cut -d: -f4) runs," \
      "$(grep -E '^stat::new_units_added' "$log" | tr -s ' ' | cut -d: -f4) new inputs, no failure"
  done
fi

step "SDK test dependencies"
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import openai, pytest, websockets" >/dev/null 2>&1; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/sdk/python/requirements.txt
fi
if [ ! -d tests/sdk/ts/node_modules/ws ]; then
  npm ci --prefix tests/sdk/ts --no-audit --no-fund --loglevel=error
fi
if [ ! -x tests/codex/node_modules/.bin/codex ]; then
  npm ci --prefix tests/codex --no-audit --no-fund --loglevel=error
fi

step "build the binaries"
cargo build --locked -p antwort -p antwort-mock

step "official SDK suites (Python, TypeScript) against the real binaries, SQLite storage"
VENV="$VENV" bash tests/sdk/run.sh

step "Codex CLI session: a shell-tool round trip over WebSocket, then over SSE"
bash tests/codex/run.sh

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
