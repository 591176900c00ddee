"""WebSocket mode through the official Python SDK's client (`openai[realtime]`):
`client.responses.connect()`, turns continued from the connection with
`store: false`, streams side by side, errors in the WebSocket shape, and the
Codex tool items parsed into the SDK's own types."""

import pytest
from openai import OpenAIError
from openai.types.responses import (
    ResponseCustomToolCall,
    ResponseFunctionShellToolCall,
)

MODEL = "mock-model"
TERMINAL = {"response.completed", "response.incomplete", "response.failed"}


def turn(connection, **body):
    """Sends one response.create and reads its events up to the terminal one."""
    connection.send({"type": "response.create", "model": MODEL, **body})
    events = []
    for event in connection:
        events.append(event)
        if event.type == "error":
            return events
        if event.type in TERMINAL:
            return events
    raise AssertionError("the socket closed before the turn ended")


def test_a_turn_streams_the_events_sse_would(client):
    with client.responses.connect() as connection:
        events = turn(connection, input="hello socket", store=False)
    types = [event.type for event in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = events[-1].response.output_text
    assert text.startswith("echo: hello socket")


def test_unstored_turns_continue_from_the_connection(client):
    with client.responses.connect() as connection:
        first = turn(connection, input="my name is Ada", store=False)[-1].response
        second = turn(
            connection,
            input="what is my name? [[echo_request]]",
            previous_response_id=first.id,
            store=False,
        )[-1].response
    assert "my name is Ada" in second.output_text
    with pytest.raises(Exception):
        client.responses.retrieve(first.id)


def test_a_bad_turn_is_an_error_event_and_the_socket_goes_on(client):
    with client.responses.connect() as connection:
        error = turn(connection, input="x", previous_response_id="resp_nobody", store=False)[-1]
        assert error.type == "error"
        assert error.status == 400
        assert error.error.code == "previous_response_not_found"
        assert error.error.param == "previous_response_id"
        after = turn(connection, input="still here", store=False)
        assert after[-1].type == "response.completed"


def test_streams_run_side_by_side_on_one_socket(client):
    with client.responses.connect() as connection:
        for lane in ("a", "b"):
            connection.send(
                {
                    "type": "response.create",
                    "model": MODEL,
                    "input": f"lane {lane} [[tokens:20]] [[delay_ms:5]]",
                    "store": False,
                    "stream_id": lane,
                }
            )
        done = {}
        for event in connection:
            assert event.stream_id in ("a", "b")
            if event.type == "response.completed":
                done[event.stream_id] = event.response
                if len(done) == 2:
                    break
    assert done["a"].id != done["b"].id


def test_the_sdk_raises_on_a_websocket_error_nobody_handles(client):
    with client.responses.connect() as connection:
        # `stream: false` is HTTP's: refused on a socket, by name.
        connection.send({"type": "response.create", "model": MODEL, "input": "x", "stream": False})
        with pytest.raises(OpenAIError, match="stream"):
            connection.dispatch_events()


def test_codex_tool_items_parse_as_the_sdk_types(client):
    tools = [
        {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"}},
        {"type": "shell"},
    ]
    prompt = 'go [[tool:apply_patch:{"input":"*** Begin Patch"}]] [[tool:shell:{"commands":["ls"]}]]'
    with client.responses.connect() as connection:
        response = turn(connection, input=prompt, tools=tools, store=False)[-1].response
    kinds = {type(item) for item in response.output}
    assert ResponseCustomToolCall in kinds, response.output
    assert ResponseFunctionShellToolCall in kinds, response.output
    custom = next(item for item in response.output if isinstance(item, ResponseCustomToolCall))
    assert custom.input == "*** Begin Patch"
