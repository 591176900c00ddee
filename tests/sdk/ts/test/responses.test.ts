// The official openai npm package against antwort in front of antwort-mock: create and
// stream, input shapes and their translation to Chat Completions, function calls
// (single, parallel, continued), tool_choice, structured output, images, logprobs,
// reasoning, refusals, length limits, error classes, a cut stream and the model list.
// The mock reflects what it received ("echo: ... | messages: N ...") and is scripted
// by [[directives]] in the prompt (crates/mock/src/script.rs).

import assert from "node:assert/strict";
import { test } from "node:test";

import OpenAI from "openai";
import { standardTextFormat } from "openai/helpers/standard-schema";

const baseURL = process.env.OPENAI_BASE_URL;
const apiKey = process.env.OPENAI_API_KEY ?? "test-key";
const client = new OpenAI({ baseURL, apiKey });
// For error tests: the SDK would otherwise retry 429 and 5xx answers.
const noRetry = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const MODEL = "mock-model";
const TERMINAL = ["response.completed", "response.incomplete", "response.failed"];
const TWO_CALLS = '[[tool:get_weather:{"city":"Paris"}]] [[tool:get_time:{"tz":"UTC"}]]';

const weather = {
  type: "function" as const,
  name: "get_weather",
  description: "Current weather in a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  strict: false,
};
const time = {
  type: "function" as const,
  name: "get_time",
  parameters: { type: "object", properties: { tz: { type: "string" } } },
  strict: false,
};
const personSchema = {
  type: "object",
  properties: { name: { type: "string" }, age: { type: "integer" } },
  required: ["name", "age"],
  additionalProperties: false,
};

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const events: T[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

function isPerson(value: unknown): value is { name: string; age: number } {
  const v = value as { name?: unknown; age?: unknown } | null;
  return typeof v?.name === "string" && Number.isInteger(v?.age);
}

// --- input shapes -------------------------------------------------------------

test("string input", async () => {
  const response = await client.responses.create({ model: MODEL, input: "Hello from TypeScript" });
  assert.equal(response.status, "completed");
  assert.ok(response.id.startsWith("resp_"));
  assert.ok(response.output_text.includes("echo: Hello from TypeScript"), response.output_text);
  assert.ok((response.usage?.total_tokens ?? 0) > 0);
});

test("instructions are a system message", async () => {
  const response = await client.responses.create({ model: MODEL, instructions: "Be terse.", input: "hi" });
  assert.ok(response.output_text.includes("system: Be terse."), response.output_text);
  assert.ok(response.output_text.includes("messages: 2"), response.output_text);
});

test("message lists: every role, with and without type, string and array content", async () => {
  const response = await client.responses.create({
    model: MODEL,
    instructions: "be brief",
    input: [
      { role: "system", content: "sys" },
      { type: "message", role: "developer", content: [{ type: "input_text", text: "dev" }] },
      { role: "user", content: "first" },
      { role: "assistant", content: "reply" },
      { type: "message", role: "user", content: [{ type: "input_text", text: "second" }] },
    ],
  });
  assert.equal(response.output_text, "echo: second | system: be brief / sys / dev | messages: 6 | images: 0 | tools: -");
});

test("translation to Chat Completions", async () => {
  const response = await client.responses.create({
    model: MODEL,
    input: [
      { role: "developer", content: "dev" },
      { role: "user", content: [{ type: "input_text", text: "[[echo_request]]" }] },
    ],
    max_output_tokens: 16,
    tools: [weather],
    tool_choice: "required",
  });
  assert.equal(response.tool_choice, "required");
  const sent = JSON.parse(response.output_text);
  assert.deepEqual(sent.messages[0], { role: "system", content: "dev" });
  assert.equal(sent.messages[1].role, "user");
  assert.equal(sent.max_tokens, 16);
  assert.equal(sent.tool_choice, "required");
  assert.deepEqual(
    sent.tools.map((tool: { function: { name: string } }) => tool.function.name),
    ["get_weather"],
  );
});

// --- streaming ----------------------------------------------------------------

test("stream grammar", async () => {
  const events = await collect(await client.responses.create({ model: MODEL, input: "stream me", stream: true }));
  const types = events.map((e) => e.type);
  assert.deepEqual(types.slice(0, 2), ["response.created", "response.in_progress"]);
  assert.deepEqual(
    events.map((e) => e.sequence_number),
    events.map((_, i) => i),
  );
  assert.deepEqual(
    types.filter((t) => TERMINAL.includes(t)),
    ["response.completed"],
  );
  let deltas = "";
  const done: string[] = [];
  for (const event of events) {
    if (event.type === "response.output_text.delta") deltas += event.delta;
    if (event.type === "response.output_text.done") done.push(event.text);
  }
  assert.ok(deltas.startsWith("echo: stream me"), deltas);
  assert.deepEqual(done, [deltas]);
  const last = events.at(-1);
  assert.ok(last?.type === "response.completed");
  assert.equal(last.response.status, "completed");
  // `output_text` is a convenience the SDK adds to non-streamed results only.
  const text = last.response.output
    .flatMap((item) => (item.type === "message" ? item.content : []))
    .map((part) => (part.type === "output_text" ? part.text : ""))
    .join("");
  assert.equal(text, deltas);
});

test("stream helper gives the final response", async () => {
  const stream = client.responses.stream({ model: MODEL, input: "helper" });
  const deltas: string[] = [];
  stream.on("response.output_text.delta", (event) => deltas.push(event.delta));
  const final = await stream.finalResponse();
  assert.ok(deltas.length > 1);
  assert.equal(final.output_text, deltas.join(""));
  assert.ok(final.output_text.startsWith("echo: helper"), final.output_text);
});

test("keepalive comments during a slow start are ignored", async () => {
  // run.sh sets a 200 ms keepalive interval; the mock waits 500 ms before its first chunk.
  const params = { model: MODEL, input: "[[ttft_ms:500]] [[reply:ok]]", stream: true as const };
  const raw = await client.responses.create(params).asResponse();
  assert.ok((await raw.text()).split("\n").includes(": keepalive"));
  const events = await collect(await client.responses.create(params));
  const last = events.at(-1);
  assert.ok(last?.type === "response.completed");
  const done = events.find((e) => e.type === "response.output_text.done");
  assert.ok(done?.type === "response.output_text.done");
  assert.equal(done.text, "ok");
});

// --- function calls -----------------------------------------------------------

test("function call, then its output continues the conversation", async () => {
  const first = await client.responses.create({
    model: MODEL,
    tools: [weather],
    input: 'weather? [[tool:get_weather:{"city":"Paris"}]]',
  });
  assert.deepEqual(
    first.output.map((item) => item.type),
    ["function_call"],
  );
  const call = first.output[0];
  assert.ok(call.type === "function_call");
  assert.equal(call.name, "get_weather");
  assert.deepEqual(JSON.parse(call.arguments), { city: "Paris" });

  // The mock is stateless: the directive would script the call again, so the
  // replayed user turn carries the question without it.
  const second = await client.responses.create({
    model: MODEL,
    tools: [weather],
    input: [
      { role: "user", content: "weather in Paris?" },
      call, // the whole previous output (asserted above)
      { type: "function_call_output", call_id: call.call_id, output: '{"temp": 21}' },
    ],
  });
  assert.deepEqual(
    second.output.map((item) => item.type),
    ["message"],
  );
  // user, assistant with tool_calls, tool result.
  assert.ok(second.output_text.includes("messages: 3"), second.output_text);
  assert.ok(second.output_text.includes("tools: get_weather"), second.output_text);
});

test("parallel function calls", async () => {
  const response = await client.responses.create({ model: MODEL, tools: [weather, time], input: TWO_CALLS });
  const calls = response.output.filter((item) => item.type === "function_call");
  assert.equal(response.output.length, 2, "two calls and no message");
  assert.deepEqual(
    calls.map((c) => c.name),
    ["get_weather", "get_time"],
  );
  assert.deepEqual(
    calls.map((c) => JSON.parse(c.arguments)),
    [{ city: "Paris" }, { tz: "UTC" }],
  );
  assert.equal(new Set(calls.map((c) => c.call_id)).size, 2);
});

test("parallel function calls, streamed", async () => {
  const events = await collect(
    await client.responses.create({ model: MODEL, tools: [weather, time], input: TWO_CALLS, stream: true }),
  );
  const last = events.at(-1);
  assert.ok(last?.type === "response.completed");
  const calls = last.response.output.filter((item) => item.type === "function_call");
  assert.equal(last.response.output.length, 2);
  assert.deepEqual(
    calls.map((c) => c.name),
    ["get_weather", "get_time"],
  );
  assert.equal(new Set(calls.map((c) => c.call_id)).size, 2);

  const deltas = new Map<string, string>();
  const done = new Map<string, string>();
  const doneIndexes: number[] = [];
  for (const event of events) {
    if (event.type === "response.function_call_arguments.delta") {
      deltas.set(event.item_id, (deltas.get(event.item_id) ?? "") + event.delta);
    }
    if (event.type === "response.function_call_arguments.done") done.set(event.item_id, event.arguments);
    if (event.type === "response.output_item.added" || event.type === "response.output_item.done") {
      assert.equal(last.response.output[event.output_index].id, event.item.id);
    }
    if (event.type === "response.output_item.done") doneIndexes.push(event.output_index);
  }
  assert.deepEqual(done, deltas);
  assert.deepEqual(done, new Map(calls.map((c) => [c.id ?? "", c.arguments])));
  assert.deepEqual(doneIndexes.sort(), [0, 1]);
});

test("named tool_choice is sent in the chat shape", async () => {
  const response = await client.responses.create({
    model: MODEL,
    tools: [weather],
    tool_choice: { type: "function", name: "get_weather" },
    input: "[[echo_request]]",
  });
  assert.deepEqual(response.tool_choice, { type: "function", name: "get_weather" });
  const sent = JSON.parse(response.output_text);
  assert.deepEqual(sent.tool_choice, { type: "function", function: { name: "get_weather" } });
});

test("tool_choice naming an unknown function is a BadRequestError", async () => {
  await assert.rejects(
    client.responses.create({ model: MODEL, tools: [weather], tool_choice: { type: "function", name: "nope" }, input: "x" }),
    (error: unknown) => error instanceof OpenAI.BadRequestError && error.status === 400 && error.param === "tool_choice",
  );
});

// --- output shapes ------------------------------------------------------------

test("structured output with a json_schema format", async () => {
  const response = await client.responses.create({
    model: MODEL,
    input: "who?",
    text: { format: { type: "json_schema", name: "person", strict: true, schema: personSchema } },
  });
  assert.ok(isPerson(JSON.parse(response.output_text)), response.output_text);
});

test("structured output parsed by responses.parse", async () => {
  // A minimal Standard Schema validator: the SDK's generic alternative to zod.
  const person = {
    "~standard": {
      version: 1 as const,
      vendor: "antwort-sdk-tests",
      validate: (value: unknown) => (isPerson(value) ? { value } : { issues: [{ message: "not a person" }] }),
    },
  };
  const response = await client.responses.parse({
    model: MODEL,
    input: "who?",
    text: { format: standardTextFormat(person, "person", { schema: personSchema }) },
  });
  assert.ok(isPerson(response.output_parsed), response.output_text);
  assert.deepEqual(response.output_parsed, JSON.parse(response.output_text));
});

test("image input", async () => {
  const response = await client.responses.create({
    model: MODEL,
    input: [
      {
        role: "user",
        content: [
          { type: "input_text", text: "what is this" },
          { type: "input_image", image_url: "data:image/png;base64,iVBORw0KGgo=", detail: "low" },
        ],
      },
    ],
  });
  assert.ok(response.output_text.includes("echo: what is this"), response.output_text);
  assert.ok(response.output_text.includes("images: 1"), response.output_text);
});

test("logprobs", async () => {
  const response = await client.responses.create({
    model: MODEL,
    input: "[[reply:one two]]",
    include: ["message.output_text.logprobs"],
    top_logprobs: 2,
  });
  const message = response.output[0];
  assert.ok(message.type === "message");
  const part = message.content[0];
  assert.ok(part.type === "output_text");
  const logprobs = part.logprobs ?? [];
  assert.deepEqual(
    logprobs.map((lp) => lp.token),
    ["one ", "two"],
  );
  for (const lp of logprobs) {
    assert.equal(typeof lp.logprob, "number");
    assert.deepEqual(lp.bytes, [...Buffer.from(lp.token)]);
    assert.equal(lp.top_logprobs.length, 2);
  }
});

test("reasoning comes before the message", async () => {
  const response = await client.responses.create({ model: "mock-reasoning", input: "why?" });
  assert.deepEqual(
    response.output.map((item) => item.type),
    ["reasoning", "message"],
  );
  const scripted = await client.responses.create({ model: MODEL, input: "[[reasoning:let me think]] why?" });
  const reasoning = scripted.output[0];
  assert.ok(reasoning.type === "reasoning");
  assert.equal(reasoning.content?.[0]?.text, "let me think");
});

test("reasoning streamed", async () => {
  const events = await collect(await client.responses.create({ model: "mock-reasoning", input: "why?", stream: true }));
  // The SDK's types name these events differently; compare the raw `type` strings.
  const types: string[] = events.map((e) => e.type);
  // The SDK identifies itself (x-stainless-* headers), so it gets OpenAI's names.
  const done = types.indexOf("response.reasoning_text.done");
  assert.ok(types.includes("response.reasoning_text.delta"), types.join());
  assert.ok(types.indexOf("response.reasoning_text.delta") < done, types.join());
  assert.ok(done < types.indexOf("response.output_text.delta"), types.join());
  assert.equal(types.at(-1), "response.completed");
});

test("stream helper with reasoning and its summary", async () => {
  // The helper throws on event names it does not know (OpenResponses' reasoning names).
  const stream = client.responses.stream({ model: "mock-reasoning", input: "why?", reasoning: { summary: "auto" } });
  const summary: string[] = [];
  stream.on("response.reasoning_summary_text.delta", (event) => summary.push(event.delta));
  const final = await stream.finalResponse();
  const reasoning = final.output[0];
  assert.ok(reasoning.type === "reasoning");
  assert.equal(reasoning.summary[0]?.text, summary.join(""));
  assert.ok(summary.join("").length > 0);
});

test("refusal", async () => {
  const response = await client.responses.create({ model: MODEL, input: "[[refuse:I cannot help]]" });
  const message = response.output[0];
  assert.ok(message.type === "message");
  assert.deepEqual(message.content, [{ type: "refusal", refusal: "I cannot help" }]);
});

test("length limit is incomplete", async () => {
  const response = await client.responses.create({ model: MODEL, input: "[[finish:length]]", max_output_tokens: 16 });
  assert.equal(response.status, "incomplete");
  assert.equal(response.incomplete_details?.reason, "max_output_tokens");
  const events = await collect(
    await client.responses.create({ model: MODEL, input: "[[finish:length]]", max_output_tokens: 16, stream: true }),
  );
  assert.deepEqual(
    events.map((e) => e.type).filter((t) => TERMINAL.includes(t)),
    ["response.incomplete"],
  );
});

// --- errors -------------------------------------------------------------------

test("an out-of-range value is a BadRequestError naming the parameter", async () => {
  await assert.rejects(
    client.responses.create({ model: MODEL, input: "x", temperature: 5 }),
    (error: unknown) => error instanceof OpenAI.BadRequestError && error.status === 400 && error.param === "temperature",
  );
});

test("an unknown parameter is a BadRequestError naming it", async () => {
  await assert.rejects(
    // @ts-expect-error bogus_field is deliberately not a parameter
    client.responses.create({ model: MODEL, input: "x", bogus_field: 1 }),
    (error: unknown) =>
      error instanceof OpenAI.BadRequestError && error.param === "bogus_field" && error.message.includes("bogus_field"),
  );
});

test("an item_reference to nothing stored is a BadRequestError", async () => {
  await assert.rejects(
    client.responses.create({ model: MODEL, input: [{ type: "item_reference", id: "msg_1" }] }),
    (error: unknown) => error instanceof OpenAI.BadRequestError && error.status === 400,
  );
});

test("backend errors keep their class", async () => {
  await assert.rejects(
    noRetry.responses.create({ model: MODEL, input: "[[error:429]] [[retry_after:1]]" }),
    (error: unknown) =>
      error instanceof OpenAI.RateLimitError && error.status === 429 && error.headers.get("retry-after") === "1",
  );
  await assert.rejects(
    noRetry.responses.create({ model: MODEL, input: "[[error:500]]" }),
    (error: unknown) => error instanceof OpenAI.InternalServerError && error.status === 502,
  );
  await assert.rejects(
    noRetry.responses.create({ model: "missing-model", input: "x" }),
    (error: unknown) => error instanceof OpenAI.NotFoundError && error.status === 404,
  );
});

test("a cut stream reports the failure", async () => {
  const params = { model: MODEL, input: "[[cut:3]] never finishes", stream: true as const };
  // The SDK turns the `error` event into an APIError (not a connection error).
  const types: string[] = [];
  await assert.rejects(
    (async () => {
      for await (const event of await noRetry.responses.create(params)) types.push(event.type);
    })(),
    (error: unknown) =>
      error instanceof OpenAI.APIError &&
      !(error instanceof OpenAI.APIConnectionError) &&
      error.type === "server_error" &&
      error.message.length > 0,
  );
  assert.ok(types.includes("response.output_text.delta"), types.join());
  assert.ok(!types.some((t) => TERMINAL.includes(t)), types.join());

  // On the wire the stream ends with `error`, then `response.failed`.
  const raw = await noRetry.responses.create(params).asResponse();
  const data = (await raw.text())
    .split("\n")
    .filter((line) => line.startsWith("data: {"))
    .map((line) => JSON.parse(line.slice(6)));
  assert.deepEqual(
    data.slice(-2).map((event) => event.type),
    ["error", "response.failed"],
  );
  assert.equal(data.at(-1).response.status, "failed");
  assert.ok(data.at(-1).response.error.message);
});

test("models list", async () => {
  const ids: string[] = [];
  for await (const model of client.models.list()) ids.push(model.id);
  assert.ok(ids.includes("mock-model"), ids.join());
});
