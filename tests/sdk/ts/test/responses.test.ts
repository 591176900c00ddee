// The official openai npm package against antwort in front of the mock backend:
// create, stream, function calls (single, parallel, continued), structured output,
// image input, logprobs, reasoning, refusals, length limits and error classes.

import assert from "node:assert/strict";
import { test } from "node:test";

import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: process.env.OPENAI_API_KEY ?? "test" });
// Error tests: the SDK would otherwise retry 429 and 5xx answers.
const noRetry = new OpenAI({ baseURL: process.env.OPENAI_BASE_URL, apiKey: "test", maxRetries: 0 });
const MODEL = "mock-model";

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

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const events: T[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

test("string input", async () => {
  const response = await client.responses.create({ model: MODEL, input: "Hello from TypeScript" });
  assert.equal(response.status, "completed");
  assert.ok(response.output_text.startsWith("echo: Hello from TypeScript | system: - | messages: 1"));
  assert.ok((response.usage?.total_tokens ?? 0) > 0);
});

test("instructions and every role", async () => {
  const response = await client.responses.create({
    model: MODEL,
    instructions: "be brief",
    input: [
      { role: "developer", content: "dev" },
      { type: "message", role: "user", content: [{ type: "input_text", text: "first" }] },
      { role: "assistant", content: "reply" },
      { role: "user", content: "second" },
    ],
  });
  assert.equal(response.output_text, "echo: second | system: be brief / dev | messages: 5 | images: 0 | tools: -");
});

test("stream grammar", async () => {
  const events = await collect(await client.responses.create({ model: MODEL, input: "stream me", stream: true }));
  const types = events.map((e) => e.type);
  assert.deepEqual(types.slice(0, 2), ["response.created", "response.in_progress"]);
  assert.deepEqual(
    events.map((e) => e.sequence_number),
    events.map((_, i) => i),
  );
  assert.equal(types.at(-1), "response.completed");
  assert.equal(types.filter((t) => t === "response.completed").length, 1);
  let deltas = "";
  let doneText: string | undefined;
  for (const event of events) {
    if (event.type === "response.output_text.delta") deltas += event.delta;
    if (event.type === "response.output_text.done") doneText = event.text;
  }
  assert.equal(doneText, deltas);
  const last = events.at(-1);
  assert.ok(last?.type === "response.completed");
  // `output_text` is a convenience the SDK adds to non-streamed results only.
  const text = last.response.output
    .flatMap((item) => (item.type === "message" ? item.content : []))
    .map((part) => (part.type === "output_text" ? part.text : ""))
    .join("");
  assert.equal(text, deltas);
});

test("stream helper gives the final response", async () => {
  const stream = client.responses.stream({ model: MODEL, input: "helper" });
  let deltas = "";
  stream.on("response.output_text.delta", (event) => {
    deltas += event.delta;
  });
  const final = await stream.finalResponse();
  assert.equal(final.output_text, deltas);
});

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

  const second = await client.responses.create({
    model: MODEL,
    tools: [weather],
    input: [
      { role: "user", content: "weather in Paris?" },
      call,
      { type: "function_call_output", call_id: call.call_id, output: '{"temp": 21}' },
    ],
  });
  assert.ok(second.output_text.includes("messages: 3"), second.output_text);
});

test("parallel function calls, streamed", async () => {
  const events = await collect(
    await client.responses.create({
      model: MODEL,
      tools: [weather, time],
      input: '[[tool:get_weather:{"city":"Paris"}]] [[tool:get_time:{"tz":"UTC"}]]',
      stream: true,
    }),
  );
  const last = events.at(-1);
  assert.ok(last?.type === "response.completed");
  const output = last.response.output;
  assert.deepEqual(
    output.map((item) => (item.type === "function_call" ? item.name : item.type)),
    ["get_weather", "get_time"],
  );
  const ids = new Set(output.map((item) => (item.type === "function_call" ? item.call_id : "")));
  assert.equal(ids.size, 2);
  const args = new Map<string, string>();
  for (const event of events) {
    if (event.type === "response.function_call_arguments.delta") {
      args.set(event.item_id, (args.get(event.item_id) ?? "") + event.delta);
    }
    if (event.type === "response.function_call_arguments.done") {
      assert.equal(event.arguments, args.get(event.item_id));
    }
    if (event.type === "response.output_item.done") {
      assert.deepEqual(output[event.output_index], event.item);
    }
  }
});

test("tool_choice naming an unknown function is a BadRequestError", async () => {
  await assert.rejects(
    client.responses.create({
      model: MODEL,
      tools: [weather],
      tool_choice: { type: "function", name: "nope" },
      input: "x",
    }),
    (error: unknown) => error instanceof OpenAI.BadRequestError && error.param === "tool_choice",
  );
});

test("named tool_choice is sent in the chat shape", async () => {
  const response = await client.responses.create({
    model: MODEL,
    tools: [weather],
    tool_choice: { type: "function", name: "get_weather" },
    input: "[[echo_request]]",
  });
  const sent = JSON.parse(response.output_text);
  assert.deepEqual(sent.tool_choice, { type: "function", function: { name: "get_weather" } });
});

test("structured output", async () => {
  const response = await client.responses.create({
    model: MODEL,
    input: "who?",
    text: {
      format: {
        type: "json_schema",
        name: "person",
        strict: true,
        schema: {
          type: "object",
          properties: { name: { type: "string" }, age: { type: "integer" } },
          required: ["name", "age"],
          additionalProperties: false,
        },
      },
    },
  });
  const person = JSON.parse(response.output_text);
  assert.equal(typeof person.name, "string");
  assert.ok(Number.isInteger(person.age));
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
  assert.deepEqual(
    part.logprobs?.map((lp) => lp.token),
    ["one ", "two"],
  );
  assert.ok(part.logprobs?.every((lp) => lp.top_logprobs.length === 2));
});

test("reasoning comes before the message", async () => {
  const response = await client.responses.create({ model: "mock-reasoning", input: "why?" });
  assert.deepEqual(
    response.output.map((item) => item.type),
    ["reasoning", "message"],
  );
});

test("refusal", async () => {
  const response = await client.responses.create({ model: MODEL, input: "[[refuse:I cannot help]]" });
  const message = response.output[0];
  assert.ok(message.type === "message");
  assert.deepEqual(message.content[0], { type: "refusal", refusal: "I cannot help" });
});

test("length limit is incomplete", async () => {
  const response = await client.responses.create({ model: MODEL, input: "[[finish:length]]", max_output_tokens: 16 });
  assert.equal(response.status, "incomplete");
  assert.equal(response.incomplete_details?.reason, "max_output_tokens");
});

test("error classes", async () => {
  await assert.rejects(
    client.responses.create({ model: MODEL, input: "x", temperature: 5 }),
    (error: unknown) => error instanceof OpenAI.BadRequestError && error.param === "temperature",
  );
  await assert.rejects(
    noRetry.responses.create({ model: MODEL, input: "[[error:429]] [[retry_after:1]]" }),
    OpenAI.RateLimitError,
  );
  await assert.rejects(
    noRetry.responses.create({ model: MODEL, input: "[[error:500]]" }),
    (error: unknown) => error instanceof OpenAI.InternalServerError && error.status === 502,
  );
  await assert.rejects(noRetry.responses.create({ model: "missing-model", input: "x" }), OpenAI.NotFoundError);
});

test("a cut stream reports the failure", async () => {
  const types: string[] = [];
  let raised: unknown;
  try {
    const stream = await client.responses.create({ model: MODEL, input: "[[cut:3]] never finishes", stream: true });
    for await (const event of stream) types.push(event.type);
  } catch (error) {
    raised = error;
  }
  // Either the SDK raises on the `error` event, or it hands over `error` and
  // `response.failed`; a silent close would give neither.
  assert.ok(raised !== undefined || types.slice(-2).join() === "error,response.failed", types.join());
  assert.ok(!types.includes("response.completed"));
});

test("models list", async () => {
  const ids: string[] = [];
  for await (const model of client.models.list()) ids.push(model.id);
  assert.ok(ids.includes("mock-model"), ids.join());
});
