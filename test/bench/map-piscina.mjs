// The plain Node loop that `byop map` is compared with: the same JSON Lines read line by line,
// each line's no-op sent to a piscina pool of 2 threads, one JSON line written per result.
//   node map-piscina.mjs INPUT OUTPUT
import { createReadStream, createWriteStream } from "node:fs";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { Piscina } from "piscina";

const [input, output] = process.argv.slice(2);
const pool = new Piscina({ filename: new URL("./peer-worker.mjs", import.meta.url).href, minThreads: 2, maxThreads: 2 });
const out = createWriteStream(output);
const calls = [];
let index = 0;
for await (const line of createInterface({ input: createReadStream(input), crlfDelay: Infinity })) {
	const i = index++;
	const [a, b] = JSON.parse(line);
	calls.push(pool.run({ a, b }).then((result) => out.write(`${JSON.stringify({ index: i, ok: true, result })}\n`)));
}
await Promise.all(calls);
out.end();
await once(out, "finish");
await pool.destroy();
