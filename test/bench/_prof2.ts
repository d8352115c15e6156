import { Piscina } from "piscina";
const N = 20000;
const pool = new Piscina({ filename: new URL("./peer-worker.mjs", import.meta.url).href, minThreads: 2, maxThreads: 2 });
await Promise.all(Array.from({ length: 2000 }, (_, i) => pool.run({ a: i, b: 1 })));
for (let k = 0; k < 3; k++) { const s = performance.now(); await Promise.all(Array.from({ length: N }, (_, i) => pool.run({ a: i, b: 1 }))); console.log(performance.now() - s); }
// serial with limited concurrency 2 like byop
for (let k = 0; k < 2; k++) {
const s = performance.now(); let i = 0;
await Promise.all([0,1].map(async () => { while (i < N) { i++; await pool.run({ a: i, b: 1 }); } }));
console.log("2-in-flight", performance.now() - s);
}
await pool.destroy();
