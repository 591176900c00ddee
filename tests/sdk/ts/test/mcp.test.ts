// MCP tools through the official openai npm package: the gateway runs the agentic
// loop against the mock's real MCP server (MOCK_URL/mcp), and the SDK's types and
// its responses.stream() helper take every MCP item and event.

import assert from "node:assert/strict";
import { test } from "node:test";

import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: process.env.OPENAI_API_KEY ?? "test-key" });
const MODEL = "mock-model";
const ADD = '[[tool:calc__add:{"a":1,"b":2}]]';

function calc(requireApproval: "always" | "never") {
  return {
    type: "mcp" as const,
    server_label: "calc",
    server_url: `${process.env.MOCK_URL}/mcp`,
    require_approval: requireApproval,
  };
}

test("an MCP tool is listed, called and answered", async () => {
  const response = await client.responses.create({ model: MODEL, tools: [calc("never")], input: `add ${ADD}` });
  assert.deepEqual(
    response.output.map((item) => item.type),
    ["mcp_list_tools", "mcp_call", "message"],
  );
  const call = response.output[1];
  assert.ok(call.type === "mcp_call");
  assert.equal(call.output, "3");
  assert.ok(response.output_text.includes("tool_results: 3"), response.output_text);
});

test("the stream helper takes every MCP event", async () => {
  const stream = client.responses.stream({ model: MODEL, tools: [calc("never")], input: `add ${ADD}` });
  const seen: string[] = [];
  for await (const event of stream) seen.push(event.type);
  const final = await stream.finalResponse();
  for (const kind of [
    "response.mcp_list_tools.completed",
    "response.mcp_call_arguments.done",
    "response.mcp_call.completed",
    "response.completed",
  ]) {
    assert.ok(seen.includes(kind), kind);
  }
  assert.deepEqual(
    final.output.map((item) => item.type),
    ["mcp_list_tools", "mcp_call", "message"],
  );
});

test("an approval request is answered through previous_response_id", async () => {
  const tools = [calc("always")];
  const first = await client.responses.create({ model: MODEL, tools, input: `add ${ADD}` });
  const request = first.output[1];
  assert.ok(request.type === "mcp_approval_request");
  const second = await client.responses.create({
    model: MODEL,
    tools,
    previous_response_id: first.id,
    input: [{ type: "mcp_approval_response", approval_request_id: request.id, approve: true }],
  });
  const call = second.output[0];
  assert.ok(call.type === "mcp_call");
  assert.equal(call.approval_request_id, request.id);
  assert.equal(call.output, "3");
});
