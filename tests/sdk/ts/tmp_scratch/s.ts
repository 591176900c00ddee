import OpenAI from "openai";
const client = new OpenAI({ baseURL: "http://127.0.0.1:18002/v1", apiKey: "x", maxRetries: 0 });
const weather = { type: "function" as const, name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } }, strict: false };
const time = { type: "function" as const, name: "get_time", parameters: { type: "object", properties: { tz: { type: "string" } } }, strict: false };
const s = client.responses.stream({ model: "mock-reasoning", tools: [weather, time], input: '[[tool:get_weather:{"city":"Paris"}]] [[tool:get_time:{"tz":"UTC"}]]' });
const types: string[] = [];
for await (const e of s) types.push(e.type);
const f = await s.finalResponse();
console.log(types.join(" "), f.output.map((o) => o.type));
try {
  const st = await client.responses.create({ model: "mock-model", input: "[[cut:3]] x", stream: true });
  for await (const e of st) types.push(e.type);
  console.log("no raise");
} catch (e: any) { console.log("raised", e.constructor.name, e.status, e.message, JSON.stringify(e.error), e.code, e.type); }
const raw = await client.responses.create({ model: "mock-model", input: "[[cut:3]] x", stream: true }).asResponse();
console.log((await raw.text()).split("\n").filter((l) => l.startsWith("event:")).join(","));
try { await client.responses.create({ model: "mock-model", input: "x", bogus_field: 1 } as any); } catch (e: any) { console.log(e.constructor.name, e.param, e.code); }
try { await client.responses.create({ model: "mock-model", input: "x" }, { body: { model: "mock-model", input: "x", bogus_field: 1 } } as any); } catch (e: any) { console.log(e.constructor.name, e.param, e.code); }
