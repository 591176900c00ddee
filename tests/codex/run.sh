#!/usr/bin/env bash
# A scripted Codex CLI session against the real binaries: antwort-mock behind
# antwort, and `codex exec` (npm @openai/codex, pinned in package.json) with a
# custom provider (`wire_api = "responses"`). The prompt scripts the mock
# (crates/mock/src/script.rs): the model calls Codex's shell tool
# (`exec_command`), Codex runs the command, and the next turn echoes the request
# the backend got, so the command's output must be there, in a tool message.
# Run twice: over WebSocket (`supports_websockets = true`) and over SSE. Checked
# from the gateway's side: its log shows a socket was used in the first run and
# none in the second. Installs nothing: scripts/test.sh and .ci/run do that.
#   ANTWORT_BIN, ANTWORT_MOCK_BIN  the binaries (default target/debug/...)
set -euo pipefail
cd "$(dirname "$0")/../.."

ANTWORT_BIN="${ANTWORT_BIN:-target/debug/antwort}"
ANTWORT_MOCK_BIN="${ANTWORT_MOCK_BIN:-target/debug/antwort-mock}"
CODEX="tests/codex/node_modules/.bin/codex"
WORK="$(mktemp -d)"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
MOCK_PORT="$(free_port)"
GW_PORT="$(free_port)"
while [ "$GW_PORT" = "$MOCK_PORT" ]; do GW_PORT="$(free_port)"; done

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

"$ANTWORT_MOCK_BIN" --listen "127.0.0.1:$MOCK_PORT" >"$WORK/mock.log" 2>&1 &
pids+=($!)
ANTWORT_API_KEYS='[{"key": "codex-key", "subject": "codex", "tenant_id": "codex"}]' ANTWORT_AUDIT_OUTPUT=none \
  ANTWORT_STORAGE=memory ANTWORT_BACKEND_URL="http://127.0.0.1:$MOCK_PORT" ANTWORT_MODEL=mock-model \
  "$ANTWORT_BIN" serve --listen "127.0.0.1:$GW_PORT" >"$WORK/antwort.log" 2>&1 &
pids+=($!)
healthy() {
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
    "http://127.0.0.1:$GW_PORT/healthz" >/dev/null 2>&1
}
for _ in $(seq 1 150); do
  if healthy; then break; fi
  sleep 0.2
done
if ! healthy; then
  echo "the gateway did not come up" >&2
  cat "$WORK/antwort.log" >&2
  exit 1
fi

# One `codex exec` with the provider's WebSocket support on or off; prints
# what Codex printed as its last message.
session() {
  local websockets="$1" home="$WORK/home-$1"
  mkdir -p "$home"
  cat >"$home/config.toml" <<TOML
model = "mock-model"
model_provider = "antwort"

[model_providers.antwort]
name = "antwort"
base_url = "http://127.0.0.1:$GW_PORT/v1"
wire_api = "responses"
env_key = "ANTWORT_KEY"
supports_websockets = $websockets
TOML
  CODEX_HOME="$home" ANTWORT_KEY=codex-key timeout 120 "$CODEX" exec --skip-git-repo-check \
    --output-last-message "$WORK/last-$websockets.txt" \
    'run it [[tool:exec_command:{"cmd":"echo antwort-$((6*7))"}]] [[echo_request]]' \
    </dev/null >"$WORK/codex-$websockets.log" 2>&1
}

# The backend's view of the second turn (the mock echoed it as the answer):
# Codex's command output came back as a tool message.
check_round_trip() {
  python3 - "$WORK/last-$1.txt" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
request = json.loads(text[text.index("{"):text.rindex("}") + 1])
tools = [m for m in request["messages"] if m["role"] == "tool"]
assert any("antwort-42" in str(m.get("content")) for m in tools), tools
calls = [c for m in request["messages"] for c in (m.get("tool_calls") or [])]
assert any(c["function"]["name"] == "exec_command" for c in calls), calls
PY
}

status=0
for websockets in true false; do
  before=$(grep -c "websocket opened" "$WORK/antwort.log" || true)
  lines_before=$(wc -l <"$WORK/antwort.log")
  if ! session "$websockets"; then
    echo "codex exec failed (supports_websockets = $websockets)" >&2
    tail -n 40 "$WORK/codex-$websockets.log" >&2
    status=1
    continue
  fi
  after=$(grep -c "websocket opened" "$WORK/antwort.log" || true)
  if ! check_round_trip "$websockets"; then
    echo "the shell call did not come back (supports_websockets = $websockets)" >&2
    status=1
  fi
  # Responses the gateway finished, by the method of the request that made
  # them: GET is the upgrade of a socket, POST an HTTP create.
  session_log="$(tail -n +"$((lines_before + 1))" "$WORK/antwort.log")"
  over_socket=$(grep "response finished" <<<"$session_log" | grep -c "method=GET" || true)
  over_http=$(grep "response finished" <<<"$session_log" | grep -c "method=POST" || true)
  if [ "$websockets" = true ] && { [ "$after" -le "$before" ] || [ "$over_socket" -lt 2 ] || [ "$over_http" -ne 0 ]; }; then
    echo "Codex did not run its turns over a WebSocket ($over_socket over a socket, $over_http over HTTP)" >&2
    status=1
  fi
  if [ "$websockets" = false ] && [ "$over_http" -lt 2 ]; then
    echo "Codex did not run its turns over HTTP ($over_http)" >&2
    status=1
  fi
  if grep -q "websocket error sent to the client" <<<"$session_log"; then
    echo "the gateway sent Codex an error:" >&2
    grep "websocket error sent to the client" <<<"$session_log" >&2
    status=1
  fi
  if [ "$websockets" = false ] && [ "$after" -ne "$before" ]; then
    echo "Codex opened a WebSocket although the provider does not support it" >&2
    status=1
  fi
  echo "codex exec, supports_websockets = $websockets: shell round trip through antwort ($((after - before)) sockets, $over_socket turns over a socket, $over_http over HTTP)"
done
if [ "$status" != 0 ]; then
  tail -n 40 "$WORK/antwort.log" >&2
fi
exit "$status"
