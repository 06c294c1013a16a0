// Real client: Node's fetch (undici) making two requests on one keep-alive connection.
const [base] = process.argv.slice(2);
const headers = { "content-type": "application/json", "x-api-key": "sk-ant-test-node-0123456789" };
const out = [];
for (const body of [
  { model: "claude-3-5-haiku-20241022", max_tokens: 64, stream: true,
    messages: [{ role: "user", content: "node stream" }] },
  { model: "claude-3-5-haiku-20241022", max_tokens: 64,
    messages: [{ role: "user", content: "node plain, compressed" }] },
]) {
  const res = await fetch(`${base}/v1/messages`, { method: "POST", headers, body: JSON.stringify(body) });
  out.push(`${res.status}:${(await res.arrayBuffer()).byteLength}`);
}
console.log(out.join(" "));
