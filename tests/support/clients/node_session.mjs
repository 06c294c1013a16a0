// Real client: Node's fetch (undici) running a session of LLM calls from a plan file.
//
//   NODE_EXTRA_CA_CERTS=cert.pem node node_session.mjs PLAN.json
//
// PLAN: {"base": "https://api.openai.com", "resolve": {"api.openai.com": "127.0.0.1"},
//        "headers": {...}, "calls": [{"path", "body", "chain"?, "pause"?}]}
// `resolve` connects to the address given whenever a name is looked up (as curl --resolve), so a
// certificate for that name on the loopback server looks like the real API. A call with `chain`
// continues the previous one (the Responses API's previous_response_id). Prints one JSON object:
// {"calls": [{path, status, id, text}]}, text being the output text the client read.
import dns from "node:dns";
import { readFileSync } from "node:fs";

const plan = JSON.parse(readFileSync(process.argv[2], "utf8"));
const table = plan.resolve ?? {};
const lookup = dns.lookup;
dns.lookup = (host, ...rest) => lookup.call(dns, table[host] ?? host, ...rest);

const sseData = (body) =>
  body.split(/\r?\n/).filter((l) => l.startsWith("data: ") && l !== "data: [DONE]").map((l) => JSON.parse(l.slice(6)));

// The response id and the output text of a Responses API reply, streamed or not.
function readResponse(body, streamed) {
  if (!streamed) {
    const r = JSON.parse(body);
    const text = (r.output ?? []).flatMap((i) => i.content ?? []).map((c) => c.text ?? "").join("");
    return { id: r.id ?? null, text };
  }
  const events = sseData(body);
  const done = events.find((e) => e.type === "response.completed");
  const text = events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join("");
  return { id: done?.response?.id ?? null, text };
}

const out = [];
let previous = null;
for (const call of plan.calls) {
  if (call.pause) await new Promise((r) => setTimeout(r, call.pause * 1000));
  const body = call.chain && previous ? { ...call.body, previous_response_id: previous } : call.body;
  const res = await fetch(plan.base + call.path, {
    method: "POST",
    headers: { "content-type": "application/json", ...plan.headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  const got = res.ok ? readResponse(text, !!body.stream) : { id: null, text: null };
  previous = got.id;
  out.push({ path: call.path, status: res.status, ...got });
}
console.log(JSON.stringify({ calls: out }));
