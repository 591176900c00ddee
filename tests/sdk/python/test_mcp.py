"""MCP tools through the official OpenAI Python SDK: the gateway runs the agentic
loop against the mock's real MCP server (MOCK_URL/mcp), and the SDK's own types
parse every item and event (tests/sdk/run.sh allows loopback MCP servers)."""

import json
import os

MODEL = "mock-model"
ADD = '[[tool:calc__add:{"a":1,"b":2}]]'


def calc(require_approval="never"):
    return {
        "type": "mcp",
        "server_label": "calc",
        "server_url": os.environ["MOCK_URL"] + "/mcp",
        "require_approval": require_approval,
    }


def test_a_tool_is_listed_called_and_answered(client):
    response = client.responses.create(model=MODEL, tools=[calc()], input="add " + ADD)
    assert [item.type for item in response.output] == ["mcp_list_tools", "mcp_call", "message"]
    listing, call = response.output[0], response.output[1]
    assert "add" in [tool.name for tool in listing.tools]
    assert call.server_label == "calc" and call.name == "add"
    assert json.loads(call.arguments) == {"a": 1, "b": 2}
    assert call.output == "3" and call.error is None
    assert "tool_results: 3" in response.output_text


def test_the_stream_helper_sees_every_mcp_event(client):
    with client.responses.stream(model=MODEL, tools=[calc()], input="add " + ADD) as stream:
        seen = [event.type for event in stream]
        final = stream.get_final_response()
    for kind in [
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.completed",
        "response.completed",
    ]:
        assert kind in seen, kind
    assert [item.type for item in final.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert final.output[1].output == "3"


def test_approve_then_deny_through_previous_response_id(client):
    tools = [calc(require_approval="always")]
    first = client.responses.create(model=MODEL, tools=tools, input="add " + ADD)
    assert [item.type for item in first.output] == ["mcp_list_tools", "mcp_approval_request"]
    request = first.output[1]
    approved = client.responses.create(
        model=MODEL,
        tools=tools,
        previous_response_id=first.id,
        input=[{"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}],
    )
    assert [item.type for item in approved.output] == ["mcp_call", "message"]
    assert approved.output[0].approval_request_id == request.id
    assert approved.output[0].output == "3"

    again = client.responses.create(model=MODEL, tools=tools, input="add again " + ADD)
    denied = client.responses.create(
        model=MODEL,
        tools=tools,
        previous_response_id=again.id,
        input=[{"type": "mcp_approval_response", "approval_request_id": again.output[1].id, "approve": False}],
    )
    assert [item.type for item in denied.output] == ["message"]
    assert "denied this tool call" in denied.output_text


def test_a_stored_loop_response_reads_back_whole(client):
    response = client.responses.create(model=MODEL, tools=[calc()], input="add " + ADD)
    stored = client.responses.retrieve(response.id)
    assert [item.type for item in stored.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert stored.output[1].output == "3"
    assert stored.tools[0].type == "mcp" and stored.tools[0].server_label == "calc"
