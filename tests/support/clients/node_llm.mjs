// Real client: Node's fetch (undici) calling the loopback server's LLM routes.
//
//   NODE_EXTRA_CA_CERTS=cert.pem node node_llm.mjs PORT [--all]      (or PORT from $LLMSPY_TEST_PORT)
//
// By default: an OpenAI streaming chat call, then a Gemini streamGenerateContent call without
// alt=sse (a JSON array sent in pieces). --all adds one call to every other route. Prints one JSON
// object: {"calls": [{route, status, content_type, body, text}]}; body is the whole response
// text as received, text the assistant text read from it.
import { existsSync } from "node:fs";

const args = process.argv.slice(2);
const port = args.find((a) => /^\d+$/.test(a)) ?? process.env.LLMSPY_TEST_PORT;
const base = `https://localhost:${port}`;
const user = (content) => [{ role: "user", content }];

// Same start gate as node_fetch.mjs: tests of first-exec hooking create this file when ready.
const goFile = process.env.LLMSPY_TEST_START_WHEN;
if (goFile) {
  const deadline = Date.now() + 60000;
  while (!existsSync(goFile)) {
    if (Date.now() > deadline) throw new Error(`no ${goFile} after 60 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sseData = (body) =>
  body.split(/\r?\n/).filter((l) => l.startsWith("data: ") && l !== "data: [DONE]").map((l) => JSON.parse(l.slice(6)));
const geminiText = (chunks) =>
  chunks.map((c) => (c.candidates?.[0]?.content?.parts ?? []).map((p) => p.text ?? "").join("")).join("");

const CALLS = [
  {
    route: "/v1/chat/completions",
    headers: { authorization: "Bearer sk-test-node-llm-0123456789" },
    body: { model: "gpt-4o", stream: true, stream_options: { include_usage: true }, messages: user("node stream") },
    text: (b) => sseData(b).map((e) => e.choices?.[0]?.delta?.content ?? "").join(""),
  },
  {
    route: "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
    headers: { "x-goog-api-key": "AIza-test-node-llm" },
    body: { contents: [{ role: "user", parts: [{ text: "node gemini" }] }] },
    text: (b) => geminiText(JSON.parse(b)),
  },
];
const MORE = [
  {
    route: "/v1/responses",
    headers: { authorization: "Bearer sk-test-node-llm-0123456789" },
    body: { model: "gpt-4.1", stream: true, input: "node responses" },
    text: (b) => sseData(b).filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join(""),
  },
  {
    route: "/v1/messages",
    headers: { "x-api-key": "sk-ant-test-node-llm", "anthropic-version": "2023-06-01" },
    body: { model: "claude-haiku-4-5", max_tokens: 256, stream: true, messages: user("node anthropic") },
    text: (b) => sseData(b).filter((e) => e.delta?.type === "text_delta").map((e) => e.delta.text).join(""),
  },
  {
    route: "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
    headers: { "x-goog-api-key": "AIza-test-node-llm" },
    body: { contents: [{ role: "user", parts: [{ text: "node gemini sse" }] }] },
    text: (b) => geminiText(sseData(b)),
  },
  {
    route: "/v1beta/models/gemini-2.0-flash:generateContent",
    headers: { "x-goog-api-key": "AIza-test-node-llm" },
    body: { contents: [{ role: "user", parts: [{ text: "node gemini plain" }] }] },
    text: (b) => geminiText([JSON.parse(b)]),
  },
  {
    route: "/v2/chat",
    headers: { authorization: "Bearer co-test-node-llm" },
    body: { model: "command-a-03-2025", stream: true, messages: user("node cohere") },
    text: (b) => sseData(b).filter((e) => e.type === "content-delta").map((e) => e.delta.message.content.text).join(""),
  },
];

const out = [];
for (const call of args.includes("--all") ? [...CALLS, ...MORE] : CALLS) {
  const res = await fetch(base + call.route, {
    method: "POST",
    headers: { "content-type": "application/json", ...call.headers },
    body: JSON.stringify(call.body),
  });
  const body = await res.text();
  out.push({
    route: call.route, status: res.status, content_type: res.headers.get("content-type"), body,
    text: res.ok ? call.text(body) : null,
  });
}
console.log(JSON.stringify({ calls: out }));
