#!/usr/bin/env bash
# Runs the official-SDK suites (Python and TypeScript) against the real binaries:
# starts antwort-mock and antwort on free loopback ports, waits for /healthz, runs
# both suites, and stops the servers whatever happens. Installs nothing; see
# scripts/test.sh for that.
set -euo pipefail
cd "$(dirname "$0")/../.."

ANTWORT_BIN="${ANTWORT_BIN:-target/debug/antwort}"
ANTWORT_MOCK_BIN="${ANTWORT_MOCK_BIN:-target/debug/antwort-mock}"
VENV="${VENV:-.venv}"
LOGS="$(mktemp -d)"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
MOCK_PORT="$(free_port)"
GW_PORT="$(free_port)"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

"$ANTWORT_MOCK_BIN" --listen "127.0.0.1:$MOCK_PORT" >"$LOGS/mock.log" 2>&1 &
pids+=($!)
ANTWORT_BACKEND_URL="http://127.0.0.1:$MOCK_PORT" ANTWORT_MODEL=mock-model ANTWORT_KEEPALIVE_INTERVAL=200ms \
  "$ANTWORT_BIN" serve --listen "127.0.0.1:$GW_PORT" >"$LOGS/antwort.log" 2>&1 &
pids+=($!)

ready=0
for _ in $(seq 1 300); do
  if python3 -c "import urllib.request, sys; urllib.request.urlopen('http://127.0.0.1:$GW_PORT/readyz', timeout=1)" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 0.1
done
if [ "$ready" != 1 ]; then
  echo "the gateway did not become ready; logs:" >&2
  cat "$LOGS/mock.log" "$LOGS/antwort.log" >&2
  exit 1
fi

export OPENAI_BASE_URL="http://127.0.0.1:$GW_PORT/v1"
export OPENAI_API_KEY="test-key"
export ANTWORT_URL="http://127.0.0.1:$GW_PORT"
export MOCK_URL="http://127.0.0.1:$MOCK_PORT"

status=0
echo "--- Python (openai $("$VENV/bin/python" -c 'import openai; print(openai.__version__)'))"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/sdk/python || status=1
echo "--- TypeScript (openai $(node -p "require('./tests/sdk/ts/node_modules/openai/package.json').version"))"
(cd tests/sdk/ts && npx --no-install tsx --test test/*.test.ts) || status=1
if [ "$status" != 0 ]; then
  echo "--- gateway log (last 50 lines)"
  tail -n 50 "$LOGS/antwort.log"
fi
exit "$status"
