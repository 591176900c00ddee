// Authentication, scopes and rate limits through the official openai npm
// package: each refusal is the SDK's own error class, with OpenAI's body.

import assert from "node:assert/strict";
import { test } from "node:test";

import OpenAI from "openai";

const MODEL = "mock-model";
const baseURL = process.env.OPENAI_BASE_URL;

test("a wrong key is an AuthenticationError", async () => {
  const client = new OpenAI({ baseURL, apiKey: "sk-not-a-key", maxRetries: 0 });
  await assert.rejects(client.responses.create({ model: MODEL, input: "hi" }), (error: unknown) => {
    assert.ok(error instanceof OpenAI.AuthenticationError);
    assert.equal(error.status, 401);
    assert.equal(error.code, "invalid_api_key");
    return true;
  });
});

test("a missing scope is a PermissionDeniedError", async () => {
  const reader = new OpenAI({ baseURL, apiKey: "test-reader-key", maxRetries: 0 });
  await assert.rejects(reader.responses.create({ model: MODEL, input: "hi" }), (error: unknown) => {
    assert.ok(error instanceof OpenAI.PermissionDeniedError);
    assert.equal(error.status, 403);
    return true;
  });
});

test("a limit is a RateLimitError with Retry-After", async () => {
  // The reader key: the Python suite spends test-key's two requests.
  const limited = new OpenAI({ baseURL: process.env.ANTWORT_LIMITED_URL, apiKey: "test-reader-key", maxRetries: 0 });
  const first = await limited.models.list().withResponse();
  assert.equal(first.response.headers.get("x-ratelimit-limit-requests"), "2");
  await limited.models.list();
  await assert.rejects(limited.models.list(), (error: unknown) => {
    assert.ok(error instanceof OpenAI.RateLimitError);
    assert.equal(error.status, 429);
    assert.ok(Number(error.headers?.get("retry-after")) >= 1);
    return true;
  });
});
