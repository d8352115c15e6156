import { Scheduler, Task } from "../../src/index.ts";
const N = 20000;
const scheduler = Scheduler.withThreads({ maxWorkers: 2 });
const task = new Task({ module: new URL("./jobs.ts", import.meta.url), name: "add" }, scheduler);
let done = 0; let target = 0; let resolve = () => {};
task.on(Task.RESULT, () => { if (++done === target) resolve(); });
const batch = (n: number) => new Promise<void>((r) => { done = 0; target = n; resolve = r; for (let i = 0; i < n; i++) task.submit(i, 1); });
scheduler.on(Scheduler.STARTED, async () => {
  await batch(2000);
  for (let k = 0; k < 3; k++) { const s = performance.now(); await batch(N); console.log(performance.now() - s); }
  scheduler.stop();
});
await scheduler.run({ endOnEmpty: false });
