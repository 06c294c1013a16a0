// Real client: Node's fetch (undici) over Node's statically linked OpenSSL.
import { readFileSync } from "node:fs";

const [url, bodyFile] = process.argv.slice(2);
// A binary first seen at exec is hooked tens of ms later; tests of that path wait this long.
const delay = Number(process.env.LLMSPY_TEST_START_DELAY_MS || 0);
if (delay) await new Promise((r) => setTimeout(r, delay));
const body = readFileSync(bodyFile);
const res = await fetch(url, {
  method: "POST",
  body,
  headers: { "content-type": "application/json", "x-api-key": "sk-ant-test-abcdefghijklmnop0123456789" },
});
const data = new Uint8Array(await res.arrayBuffer());
console.log(res.status, data.length);
