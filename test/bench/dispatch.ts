// Sections 1, 2 and 5: what byop's scheduler, tasks and events cost per call, compared with the
// bare pools, and how that holds as the queue grows.
import { PynisherPlugin, Task } from "./byop.ts";
import { alternate, burst, Completions, delay, gc, job, open, type Session, summarize, threads, withTimeout } from "./harness.ts";
import { type Peer, type PeerName, peerBurst, startPeer } from "./peers.ts";
import type { Row } from "./report.ts";

/** Options shared by the sections. */
export interface Plan {
	readonly rounds: number;
	/** Rounds of the throughput comparisons (sections 1 and 2), whose rounds vary most on a busy machine. */
	readonly ratioRounds: number;
	readonly burst: number;
	readonly warmup: number;
	readonly serialCalls: number;
	readonly scaleSizes: readonly number[];
	readonly log: (line: string) => void;
}

/** Generous limits that never fire: what it costs to watch them. */
export function generousLimits(): PynisherPlugin {
	return new PynisherPlugin({ wallTimeLimit: "5m", cpuTimeLimit: "5m", memoryLimit: "512mb" });
}

type Contender = "byop" | "byop+pynisher" | PeerName;

interface Started {
	/** From creating the pool to the end of its first call. */
	readonly startupMs: number;
	burst(count: number): Promise<number>;
	close(): Promise<void>;
}

async function startByop(limited: boolean): Promise<Started> {
	const start = performance.now();
	const session = await open(threads());
	const task = new Task<[number, number], number>(job("add"), session.scheduler, limited ? { plugins: [generousLimits()] } : {});
	const completions = new Completions(task);
	await burst(task, completions, 1);
	const startupMs = performance.now() - start;
	return { startupMs, burst: (count) => burst(task, completions, count), close: () => session.close() };
}

async function startPeerPool(name: PeerName): Promise<Started> {
	const start = performance.now();
	const peer = startPeer(name);
	await peer.add(1, 1);
	const startupMs = performance.now() - start;
	return { startupMs, burst: (count) => peerBurst(peer, count), close: () => peer.close() };
}

const DISPATCH = "1. Dispatch overhead: 20,000 no-op calls at once on 2 threads";
const SERIAL = "2. One call in flight";
const SCALE = "5. Scale: no-op calls queued at once";

const DISPATCH_WHY =
	"byop's own code on the main thread is a small part of it: in a profile of the burst, Task.submit, the dispatcher, the thread executor and the events take about 1.6 µs per call. The main thread spends about 6 µs of CPU per call more than with bare piscina (about 27 against 21 µs), most of it inside piscina's `postMessage`, which has to wake a worker thread that has gone to sleep; the other threads (the two workers, and V8's helper threads) spend about 10 µs more (27–34 against 17–22 µs, from `/proc` and `process.cpuUsage()` around each burst). That is byop's work per call in the worker, spread over its parts: a worker that loads byop's modules and answers at once spends what bare piscina's does (19–23 µs), and one without AsyncLocalStorage, or without the heap sample at a call's start, measured the same as the full one (about 25 µs). How the pool is fed matters as much: byop's dispatcher keeps at most `maxWorkers` calls in the pool, so that limits, `STARTED` events and plugins such as `Limiter` never count more than `maxWorkers` calls running, and sends the next call when one ends. Fed that way (2 calls in the pool at a time), bare piscina itself runs at 31–35 µs per call here, against 27–28 µs when it holds the whole queue. With one more call waiting in piscina's queue (3 in the pool), bare piscina ran at 24–27 µs per call, and a worker that answers at once gained as much; byop's own worker gained 1–13% in four runs (its own work per call is on the path either way), and byop with that dispatcher measured 0.78× and 0.75× against 0.81× in `npm run bench`. Such a call would also count as started while it waits in piscina's queue: not adopted. How an idle thread waits is not the cause in a burst: bare piscina ran at 30,695 calls/s with `atomics: \"async\"`, 29,760 with `\"sync\"` and 32,964 with `\"disabled\"` in one run, and byop with `\"disabled\"` measured the same as with `\"async\"` (0.82× and 0.74×). Two calls per thread in flight were tried too and gave no gain: the cores were already busy.";

export async function dispatchSection(plan: Plan): Promise<Row[]> {
	const contenders: readonly Contender[] = ["byop", "piscina", "byop+pynisher", "tinypool", "workerpool"];
	const ms = new Map<Contender, number[]>(contenders.map((name) => [name, []]));
	const startup = new Map<Contender, number[]>(contenders.map((name) => [name, []]));
	const ratios = new Map<Contender, number[]>(contenders.map((name) => [name, []]));
	await alternate(plan.ratioRounds, contenders, async (name, round) => {
		const pool = name === "byop" || name === "byop+pynisher" ? await startByop(name === "byop+pynisher") : await startPeerPool(name);
		try {
			await pool.burst(plan.warmup);
			ms.get(name)![round] = await pool.burst(plan.burst);
			startup.get(name)![round] = pool.startupMs;
		} finally {
			await pool.close();
		}
		if (contenders.every((contender) => ms.get(contender)![round] !== undefined)) {
			plan.log(`  dispatch round ${round + 1}/${plan.ratioRounds}: ${contenders.map((c) => `${c} ${Math.round(ms.get(c)![round] ?? Number.NaN)} ms`).join(", ")}`);
		}
	});
	for (let round = 0; round < plan.ratioRounds; round++) {
		const piscina = ms.get("piscina")![round]!;
		for (const name of contenders) {
			ratios.get(name)![round] = piscina / ms.get(name)![round]!;
		}
	}
	const throughput = (name: Contender): number[] => ms.get(name)!.map((value) => (plan.burst / value) * 1000);
	const perSecond = (name: Contender): string => {
		const s = summarize(throughput(name));
		return `${Math.round(s.median).toLocaleString("en-US")} calls/s`;
	};
	const rows: Row[] = [
		{
			section: DISPATCH,
			measure: "byop (Scheduler + Task + RESULT events) ÷ piscina.run(), throughput",
			value: summarize(ratios.get("byop")!),
			shape: "range",
			unit: "×",
			digits: 2,
			reference: `byop ${perSecond("byop")}, piscina ${perSecond("piscina")}`,
			target: { stat: "median", op: ">=", value: 0.9 },
			whyMissed: DISPATCH_WHY,
			chart: { group: "ratio", label: "byop, 20k burst" },
		},
		{
			section: DISPATCH,
			measure: "byop with PynisherPlugin (wall, CPU, memory limits) ÷ piscina",
			value: summarize(ratios.get("byop+pynisher")!),
			shape: "range",
			unit: "×",
			digits: 2,
			reference: `${perSecond("byop+pynisher")}`,
			target: { stat: "median", op: ">=", value: 0.8 },
			whyMissed:
				"Everything under the row above, and per limited call its `CallMonitor` (a wall timer set and cleared), a `Stopper`, the watchdog's and the `OffHeapWatch`'s bookkeeping, and the pool with the 512 MB heap cap, whose threads start at the first limited call.",
			chart: { group: "ratio", label: "byop + limits, 20k burst" },
		},
		{
			section: DISPATCH,
			measure: "tinypool ÷ piscina",
			value: summarize(ratios.get("tinypool")!),
			shape: "range",
			unit: "×",
			digits: 2,
			reference: perSecond("tinypool"),
			chart: { group: "ratio", label: "tinypool, 20k burst" },
		},
		{
			section: DISPATCH,
			measure: "workerpool ÷ piscina",
			value: summarize(ratios.get("workerpool")!),
			shape: "range",
			unit: "×",
			digits: 2,
			reference: perSecond("workerpool"),
			chart: { group: "ratio", label: "workerpool, 20k burst" },
		},
	];
	for (const name of contenders) {
		rows.push({
			section: DISPATCH,
			measure: `pool start-up to first result: ${name}`,
			value: summarize(startup.get(name)!),
			shape: "range",
			unit: "ms",
			digits: 0,
		});
	}
	return rows;
}

const SERIAL_WHY =
	"A lone call pays the whole round trip, with nothing to overlap it. Part of the gap is waking an idle thread: byop's pools run with piscina's `atomics: \"async\"`, so that an idle thread waits with `Atomics.waitAsync` and runs its event loop (what a finished call left behind then runs between calls, not inside the next one; see docs/reliability.md), and such a thread wakes through its event loop. Bare piscina with `atomics: \"async\"` takes 59–71 µs per awaited call here, against 50–54 µs with its default `\"sync\"` (three runs, one thread). The rest is byop's work per call on both sides of the round trip, each on the path: profiles of 30,000 awaited calls put about 3 µs on the main thread (the thread executor, the scheduler, the task's events) and about 6 µs in the worker, and the thread executor alone, without the scheduler, took 74 µs per call against 59 µs for bare piscina with `\"async\"` in the same run.";

/** Section 2: `await task.submit()` one call at a time, against `await piscina.run()`. */
export async function serialSection(plan: Plan): Promise<Row[]> {
	let session: Session | undefined;
	let peer: Peer | undefined;
	try {
		session = await open(threads());
		peer = startPeer("piscina");
		const plain = new Task<[number, number], number>(job("add"), session.scheduler);
		const limited = new Task<[number, number], number>(job("add"), session.scheduler, { plugins: [generousLimits()] });
		const p = peer;
		const serial = async (run: (i: number) => PromiseLike<unknown>, count: number): Promise<number> => {
			const start = performance.now();
			for (let i = 0; i < count; i++) {
				await run(i);
			}
			return ((performance.now() - start) * 1000) / count;
		};
		const runners = {
			byop: (i: number) => plain.submit(i, 1)!,
			"byop+pynisher": (i: number) => limited.submit(i, 1)!,
			piscina: (i: number) => p.add(i, 1),
		} as const;
		type Name = keyof typeof runners;
		const names: readonly Name[] = ["byop", "piscina", "byop+pynisher"];
		for (const name of names) {
			await serial(runners[name], plan.warmup / 4);
		}
		const us = new Map<Name, number[]>(names.map((name) => [name, []]));
		await alternate(plan.ratioRounds, names, async (name, round) => {
			us.get(name)![round] = await serial(runners[name], plan.serialCalls);
		});
		const ratio = (name: Name): number[] => us.get(name)!.map((value, round) => us.get("piscina")![round]! / value);
		const latency = (name: Name): string => `${summarize(us.get(name)!).median.toFixed(0)} µs/call`;
		return [
			{
				section: SERIAL,
				measure: `byop ÷ piscina throughput, ${plan.serialCalls.toLocaleString("en-US")} awaited calls one after another`,
				value: summarize(ratio("byop")),
				shape: "range",
				unit: "×",
				digits: 2,
				reference: `byop ${latency("byop")}, piscina ${latency("piscina")}`,
				target: { stat: "median", op: ">=", value: 0.85 },
				whyMissed: SERIAL_WHY,
				chart: { group: "ratio", label: "byop, one in flight" },
			},
			{
				section: SERIAL,
				measure: "byop with PynisherPlugin ÷ piscina, one in flight",
				value: summarize(ratio("byop+pynisher")),
				shape: "range",
				unit: "×",
				digits: 2,
				reference: latency("byop+pynisher"),
				chart: { group: "ratio", label: "byop + limits, one in flight" },
			},
		];
	} finally {
		await session?.close();
		await peer?.close();
	}
}

/** Section 5: 1,000 / 10,000 / 100,000 no-op calls queued at once. */
export async function scaleSection(plan: Plan): Promise<Row[]> {
	const session = await open(threads());
	try {
		const task = new Task<[number, number], number>(job("add"), session.scheduler);
		const completions = new Completions(task);
		await burst(task, completions, plan.warmup);
		const rate = new Map<number, number[]>(plan.scaleSizes.map((size) => [size, []]));
		const bytes = new Map<number, number[]>(plan.scaleSizes.map((size) => [size, []]));
		await alternate(plan.rounds, plan.scaleSizes, async (size, round) => {
			await burst(task, completions, plan.warmup);
			// A batch shorter than 10,000 calls is repeated (each time queued at once and drained), so
			// that every size is timed over about a second rather than a few milliseconds.
			const repeats = Math.max(1, Math.round(10_000 / size));
			let ms = 0;
			for (let i = 0; i < repeats; i++) {
				ms += await burst(task, completions, size);
			}
			rate.get(size)![round] = ((size * repeats) / ms) * 1000;
		});
		// The heap held by a queue of `size` calls, between two full collections; the queued calls
		// are then cancelled. Collections slow the next few thousand calls, so this pass comes last.
		await alternate(plan.rounds, plan.scaleSizes, async (size, round) => {
			// Twice, with a turn of the event loop between: promises settled by the last batch let go
			// of their objects only after their reactions have run.
			gc();
			await delay(10);
			gc();
			const before = process.memoryUsage().heapUsed;
			const done = completions.expect(size);
			for (let i = 0; i < size; i++) {
				task.submit(i, 1);
			}
			gc();
			bytes.get(size)![round] = (process.memoryUsage().heapUsed - before) / size;
			for (const future of task.running) {
				future.cancel("measured");
			}
			await withTimeout(done, 120_000, "cancelling the queue");
			// Cancelled calls stay in the dispatcher's queue array until it next walks past them.
			await burst(task, completions, 10);
		});
		const medians = plan.scaleSizes.map((size) => summarize(rate.get(size)!).median);
		const spread = plan.scaleSizes.map((_, i) => medians[i]! / Math.max(...medians));
		const rows: Row[] = plan.scaleSizes.map((size) => ({
			section: SCALE,
			measure: `${size.toLocaleString("en-US")} calls: throughput`,
			value: summarize(rate.get(size)!),
			shape: "range",
			unit: "calls/s",
			digits: 0,
		}));
		rows.push({
			section: SCALE,
			measure: "slowest size ÷ fastest size, median throughput",
			value: summarize([Math.min(...spread)]),
			shape: "range",
			unit: "×",
			digits: 2,
			target: { stat: "median", op: ">=", value: 0.8 },
			whyMissed: `Median throughput per size: ${plan.scaleSizes.map((size, i) => `${size.toLocaleString("en-US")}: ${Math.round(medians[i]!).toLocaleString("en-US")}/s`).join(", ")}. Nothing in byop's queue grows with its length: the dispatcher pops from an array head in O(1), the heap held per queued call is the same at every size, and garbage collection takes 8–19 % of the main thread at every size (measured with a \`PerformanceObserver\` on \`gc\`). The rounds of one size vary about as much as the sizes differ (see min – max): a short batch feels every pause of the machine.`,
		});
		for (const size of plan.scaleSizes) {
			rows.push({
				section: SCALE,
				measure: `${size.toLocaleString("en-US")} calls: main-thread heap held per queued call`,
				value: summarize(bytes.get(size)!.map((value) => value / 1024)),
				shape: "range",
				unit: "KB",
				digits: 2,
				target: { stat: "median", op: "<=", value: 1 },
				whyMissed:
					"A queued call holds its `Future` (its promise is made only when it is awaited), the dispatcher's `Entry` (also its ticket) with a `Cancellation`, the `Call` and its `args`, and an entry in the task's `#running` set.",
			});
		}
		return rows;
	} finally {
		await session.close();
	}
}
