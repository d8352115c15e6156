import { Piscina } from "piscina";
import { Scheduler, Task } from "/work/main/src/index.ts";
import { PynisherPlugin } from "/work/main/src/pynisher/index.ts";
const N = 20000;
async function byop(plugins: any[]) {
  const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
  const task = new Task({ module: new URL("file:///work/main/test/bench/jobs.ts"), name: "add" }, scheduler, { plugins });
  let done = 0; let target = 0; let resolve = () => {};
  task.on(Task.RESULT, () => { if (++done === target) resolve(); });
  const batch = (n: number) => new Promise<void>((r) => { done = 0; target = n; resolve = r; for (let i = 0; i < n; i++) task.submit(i, 1); });
  let ms = 0; const t0 = performance.now(); let startup = 0;
  scheduler.on(Scheduler.STARTED, async () => {
    await batch(1); startup = performance.now() - t0;
    await batch(2000);
    const s = performance.now(); await batch(N); ms = performance.now() - s;
    scheduler.stop();
  });
  await scheduler.run({ endOnEmpty: false });
  return { ms, startup };
}
async function pis() {
  const t0 = performance.now();
  const pool = new Piscina({ filename: new URL("file:///work/main/test/bench/peer-worker.mjs").href, minThreads: 2, maxThreads: 2 });
  await pool.run({ a: 1, b: 1 }); const startup = performance.now() - t0;
  await Promise.all(Array.from({ length: 2000 }, (_, i) => pool.run({ a: i, b: 1 })));
  const s = performance.now();
  await Promise.all(Array.from({ length: N }, (_, i) => pool.run({ a: i, b: 1 })));
  const ms = performance.now() - s;
  await pool.destroy();
  return { ms, startup };
}
for (let r = 0; r < 3; r++) {
  console.log("byop", await byop([]));
  console.log("piscina", await pis());
  console.log("byop+pyn", await byop([new PynisherPlugin({ wallTimeLimit: "5s", cpuTimeLimit: "5s", memoryLimit: "512mb" })]));
}
