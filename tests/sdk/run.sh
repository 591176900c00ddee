#!/usr/bin/env bash
# Runs the official-SDK suites (Python and TypeScript) against the real binaries:
# starts antwort-mock and antwort on free loopback ports, waits for the gateway's
# /healthz, runs both suites (each even if the other failed), and stops the servers
# whatever happens. Installs nothing: scripts/test.sh and .ci/run do that.
#   ANTWORT_BIN, ANTWORT_MOCK_BIN  the binaries (default target/debug/...)
#   VENV                           the Python venv with requirements.txt (default .venv)
set -euo pipefail
cd "$(dirname "$0")/../.."

ANTWORT_BIN="${ANTWORT_BIN:-target/debug/antwort}"
ANTWORT_MOCK_BIN="${ANTWORT_MOCK_BIN:-target/debug/antwort-mock}"
VENV="${VENV:-.venv}"
# Which store the gateway runs on: memory (default) or postgres with SDK_STORAGE_DSN.
SDK_STORAGE="${SDK_STORAGE:-memory}"
SDK_STORAGE_DSN="${SDK_STORAGE_DSN:-}"
LOGS="$(mktemp -d)"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
MOCK_PORT="$(free_port)"
GW_PORT="$(free_port)"
while [ "$GW_PORT" = "$MOCK_PORT" ]; do GW_PORT="$(free_port)"; done
LIMITED_PORT="$(free_port)"
while [ "$LIMITED_PORT" = "$MOCK_PORT" ] || [ "$LIMITED_PORT" = "$GW_PORT" ]; do LIMITED_PORT="$(free_port)"; done

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$LOGS"
}
trap cleanup EXIT

# Both server logs, or their last $1 lines.
show_logs() {
  echo "--- antwort-mock log (port $MOCK_PORT)" >&2
  tail -n "${1:-+1}" "$LOGS/mock.log" >&2
  echo "--- antwort log (port $GW_PORT)" >&2
  tail -n "${1:-+1}" "$LOGS/antwort.log" >&2
  echo "--- rate-limited antwort log (port $LIMITED_PORT)" >&2
  tail -n "${1:-+1}" "$LOGS/limited.log" >&2
}

# The suites authenticate as the SDKs do, with a bearer key: the gateway
# requires one. `test-reader-key` may only read; the second gateway allows two
# requests a minute per key, for the rate-limit tests.
KEYS='[{"key": "test-key", "subject": "sdk", "tenant_id": "sdk"},
       {"key": "test-reader-key", "subject": "sdk", "tenant_id": "sdk", "scopes": ["responses:read", "conversations:read"]}]'
printf 'auth:\n  rate_limits:\n    per_key:\n      requests_per_minute: 2\n' >"$LOGS/limited.yaml"
"$ANTWORT_MOCK_BIN" --listen "127.0.0.1:$MOCK_PORT" >"$LOGS/mock.log" 2>&1 &
pids+=($!)
ANTWORT_API_KEYS="$KEYS" ANTWORT_AUDIT_OUTPUT=none ANTWORT_STORAGE="$SDK_STORAGE" ANTWORT_STORAGE_DSN="$SDK_STORAGE_DSN" ANTWORT_BACKEND_URL="http://127.0.0.1:$MOCK_PORT" ANTWORT_MODEL=mock-model ANTWORT_KEEPALIVE_INTERVAL=200ms ANTWORT_MCP_ALLOW_LOOPBACK=true \
  "$ANTWORT_BIN" serve --listen "127.0.0.1:$GW_PORT" >"$LOGS/antwort.log" 2>&1 &
pids+=($!)
ANTWORT_CONFIG="$LOGS/limited.yaml" ANTWORT_API_KEYS="$KEYS" ANTWORT_AUDIT_OUTPUT=none ANTWORT_STORAGE=memory ANTWORT_BACKEND_URL="http://127.0.0.1:$MOCK_PORT" ANTWORT_MODEL=mock-model \
  "$ANTWORT_BIN" serve --listen "127.0.0.1:$LIMITED_PORT" >"$LOGS/limited.log" 2>&1 &
pids+=($!)

# Up to 30 s for GET /healthz to answer 200; give up at once if a server exits.
healthy() {
  python3 - "http://127.0.0.1:$GW_PORT/healthz" "http://127.0.0.1:$LIMITED_PORT/healthz" <<'EOF'
import sys, urllib.request
try:
    sys.exit(0 if all(urllib.request.urlopen(url, timeout=1).status == 200 for url in sys.argv[1:]) else 1)
except Exception:
    sys.exit(1)
EOF
}
deadline=$((SECONDS + 30))
until healthy; do
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "a server exited before the gateway was healthy" >&2
      show_logs
      exit 1
    fi
  done
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "the gateway did not answer GET /healthz with 200 within 30 s" >&2
    show_logs
    exit 1
  fi
  sleep 0.2
done

export OPENAI_BASE_URL="http://127.0.0.1:$GW_PORT/v1"
export OPENAI_API_KEY="test-key"
export ANTWORT_LIMITED_URL="http://127.0.0.1:$LIMITED_PORT/v1"
export ANTWORT_URL="http://127.0.0.1:$GW_PORT"
export MOCK_URL="http://127.0.0.1:$MOCK_PORT"
export PYTHONDONTWRITEBYTECODE=1

status=0
echo "--- Python suite (openai $("$VENV/bin/python" -c 'import openai; print(openai.__version__)'))"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/sdk/python || status=1
echo "--- TypeScript suite (openai $(node -p "require('./tests/sdk/ts/node_modules/openai/package.json').version"))"
(cd tests/sdk/ts && npx --no-install tsc -p . && npx --no-install tsx --test test/*.test.ts) || status=1
if [ "$status" != 0 ]; then
  show_logs 60
fi
exit "$status"
