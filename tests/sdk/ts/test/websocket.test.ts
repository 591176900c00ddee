// WebSocket mode through the official openai npm package's client
// (`openai/resources/responses/ws`, on `ws`): turns, continuation from the
// connection with `store: false`, errors, and streams side by side.

import assert from "node:assert/strict";
import { test } from "node:test";

import OpenAI from "openai";
import { ResponsesWS } from "openai/resources/responses/ws";

const client = new OpenAI({
  baseURL: process.env.OPENAI_BASE_URL,
  apiKey: process.env.OPENAI_API_KEY ?? "test-key",
});
const MODEL = "mock-model";
const TERMINAL = ["response.completed", "response.incomplete", "response.failed"];

type Event = { type: string; [key: string]: any };

/** Sends one response.create and reads its events up to the terminal one (or an error). */
async function turn(
  messages: AsyncIterableIterator<any>,
  ws: ResponsesWS,
  body: Record<string, unknown>,
): Promise<Event[]> {
  ws.send({ type: "response.create", model: MODEL, ...body } as any);
  const events: Event[] = [];
  for (;;) {
    const { value, done } = await messages.next();
    assert.ok(!done, "the socket closed before the turn ended");
    if (value.type === "error") {
      events.push({ type: "error", ...(value.error.error ?? {}) });
      return events;
    }
    if (value.type !== "message") continue;
    events.push(value.message);
    if (value.message.type === "error" && value.message.sequence_number === undefined) return events;
    if (TERMINAL.includes(value.message.type)) return events;
  }
}

async function open(): Promise<{ ws: ResponsesWS; messages: AsyncIterableIterator<any> }> {
  const ws = new ResponsesWS(client);
  const messages = ws.stream();
  return { ws, messages };
}

test("a turn over the socket streams what SSE would, numbered from 0", async () => {
  const { ws, messages } = await open();
  try {
    const events = await turn(messages, ws, { input: "hello socket", store: false });
    assert.equal(events[0].type, "response.created");
    assert.equal(events.at(-1)!.type, "response.completed");
    assert.deepEqual(
      events.map((event) => event.sequence_number),
      events.map((_, index) => index),
    );
  } finally {
    ws.close({ code: 1000, reason: "done" });
  }
});

test("unstored turns continue from the connection", async () => {
  const { ws, messages } = await open();
  try {
    const first = (await turn(messages, ws, { input: "my name is Ada", store: false })).at(-1)!;
    const second = (
      await turn(messages, ws, {
        input: "what is my name? [[echo_request]]",
        previous_response_id: first.response.id,
        store: false,
      })
    ).at(-1)!;
    const text = second.response.output[0].content[0].text as string;
    assert.ok(text.includes("my name is Ada"), text);
  } finally {
    ws.close({ code: 1000, reason: "done" });
  }
});

test("a bad turn is one error and the socket goes on", async () => {
  const { ws, messages } = await open();
  try {
    const error = (await turn(messages, ws, { input: "x", previous_response_id: "resp_nobody" })).at(-1)!;
    assert.equal(error.type, "error");
    assert.equal(error.error?.code, "previous_response_not_found");
    const after = await turn(messages, ws, { input: "still here", store: false });
    assert.equal(after.at(-1)!.type, "response.completed");
  } finally {
    ws.close({ code: 1000, reason: "done" });
  }
});

test("streams run side by side, each event naming its stream", async () => {
  const { ws, messages } = await open();
  try {
    for (const lane of ["a", "b"]) {
      ws.send({
        type: "response.create",
        model: MODEL,
        input: `lane ${lane} [[tokens:20]] [[delay_ms:5]]`,
        store: false,
        stream_id: lane,
      } as any);
    }
    const done = new Map<string, string>();
    while (done.size < 2) {
      const { value } = await messages.next();
      if (value.type !== "message") continue;
      const event = value.message as Event;
      assert.ok(["a", "b"].includes(event.stream_id), JSON.stringify(event));
      if (event.type === "response.completed") done.set(event.stream_id, event.response.id);
    }
    assert.notEqual(done.get("a"), done.get("b"));
  } finally {
    ws.close({ code: 1000, reason: "done" });
  }
});
