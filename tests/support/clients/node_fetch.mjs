// Real client: Node's fetch (undici) over Node's statically linked OpenSSL.
import { existsSync, readFileSync } from "node:fs";

const [url, bodyFile] = process.argv.slice(2);
// A binary first seen at its exec is hooked some milliseconds later. Tests of that path make
// the client wait until the monitor has said so (they create this file), whatever the machine.
const goFile = process.env.LLMSPY_TEST_START_WHEN;
if (goFile) {
  const deadline = Date.now() + 60000;
  while (!existsSync(goFile)) {
    if (Date.now() > deadline) throw new Error(`no ${goFile} after 60 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
const body = readFileSync(bodyFile);
const res = await fetch(url, {
  method: "POST",
  body,
  headers: { "content-type": "application/json", "x-api-key": "sk-ant-test-abcdefghijklmnop0123456789" },
});
const data = new Uint8Array(await res.arrayBuffer());
console.log(res.status, data.length);
