// What a run may leave behind, read from /proc: open file descriptors, OS threads, child
// processes (alive or zombie), process groups, and timers that keep the event loop alive.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { delay } from "./helpers.ts";

export interface Snapshot {
	readonly fds: number;
	/** What each open file descriptor points to. */
	readonly fdTargets: ReadonlyMap<string, string>;
	readonly threads: number;
	/** Timers and handles that keep the event loop alive, by type. */
	readonly refed: Readonly<Record<string, number>>;
}

interface ProcStat {
	readonly pid: number;
	readonly comm: string;
	readonly state: string;
	readonly ppid: number;
	readonly pgid: number;
}

function stat(pid: number): ProcStat | undefined {
	try {
		const text = readFileSync(`/proc/${pid}/stat`, "latin1");
		const close = text.lastIndexOf(")");
		const fields = text.slice(close + 2).split(" ");
		return { pid, comm: text.slice(text.indexOf("(") + 1, close), state: fields[0] ?? "?", ppid: Number(fields[1]), pgid: Number(fields[2]) };
	} catch {
		return undefined;
	}
}

function allProcesses(): ProcStat[] {
	const stats: ProcStat[] = [];
	for (const name of readdirSync("/proc")) {
		if (/^\d+$/.test(name)) {
			const found = stat(Number(name));
			if (found !== undefined) {
				stats.push(found);
			}
		}
	}
	return stats;
}

/** The types of the active resources that keep the event loop alive (unref'd timers are not listed). */
function refed(): Record<string, number> {
	const counts: Record<string, number> = {};
	for (const type of process.getActiveResourcesInfo()) {
		counts[type] = (counts[type] ?? 0) + 1;
	}
	return counts;
}

function fdTargets(): Map<string, string> {
	const targets = new Map<string, string>();
	for (const fd of readdirSync("/proc/self/fd")) {
		try {
			targets.set(fd, readlinkSync(`/proc/self/fd/${fd}`));
		} catch {
			// Closed while listing (the listing's own descriptor).
		}
	}
	return targets;
}

export function snapshot(): Snapshot {
	const targets = fdTargets();
	return { fds: targets.size, fdTargets: targets, threads: readdirSync("/proc/self/task").length, refed: refed() };
}

/**
 * The processes of this test process's tree that are not tsx's esbuild service: children and their
 * descendants, and every process in a group led by one of `groups` (byop's pool processes).
 */
export function descendants(groups: Iterable<number> = []): { live: ProcStat[]; zombies: ProcStat[] } {
	const all = allProcesses();
	const byParent = new Map<number, ProcStat[]>();
	for (const proc of all) {
		byParent.set(proc.ppid, [...(byParent.get(proc.ppid) ?? []), proc]);
	}
	const found = new Map<number, ProcStat>();
	const stack = [...(byParent.get(process.pid) ?? [])];
	while (stack.length > 0) {
		const proc = stack.pop()!;
		if (found.has(proc.pid) || proc.comm === "esbuild") {
			continue;
		}
		found.set(proc.pid, proc);
		stack.push(...(byParent.get(proc.pid) ?? []));
	}
	const pgids = new Set(groups);
	for (const proc of all) {
		if (pgids.has(proc.pgid) && proc.pid !== process.pid) {
			found.set(proc.pid, proc);
		}
	}
	const procs = [...found.values()];
	return { live: procs.filter((proc) => proc.state !== "Z"), zombies: procs.filter((proc) => proc.state === "Z") };
}

export interface Leaks {
	readonly fds: number;
	/** The new descriptors, as `fd -> target`, when there are more than before. */
	readonly newFds?: string[];
	readonly threads: number;
	readonly live: string[];
	readonly zombies: string[];
	readonly refed: Record<string, number>;
}

/**
 * Waits up to `withinMs` for the process to come back to `before`, then says what is left:
 * extra file descriptors and threads, processes of the tree (or of byop's groups) still alive or
 * unreaped, and resources that keep the event loop alive beyond those of `before`.
 */
export async function leaksSince(before: Snapshot, groups: Iterable<number> = [], withinMs = 3000, oldZombies: ReadonlySet<string> = new Set()): Promise<Leaks> {
	const deadline = performance.now() + withinMs;
	const groupList = [...groups];
	for (;;) {
		const now = snapshot();
		const procs = descendants(groupList);
		const extra: Record<string, number> = {};
		for (const [type, count] of Object.entries(now.refed)) {
			const more = count - (before.refed[type] ?? 0);
			if (more > 0) {
				extra[type] = more;
			}
		}
		const fds = Math.max(0, now.fds - before.fds);
		const newFds = [...now.fdTargets].filter(([fd, target]) => before.fdTargets.get(fd) !== target).map(([fd, target]) => `${fd} -> ${target}`);
		const leaks: Leaks = {
			fds,
			...(fds > 0 ? { newFds } : {}),
			threads: Math.max(0, now.threads - before.threads),
			live: procs.live.map((proc) => `${proc.pid} ${proc.comm} (parent ${proc.ppid}, group ${proc.pgid})`),
			zombies: procs.zombies.map((proc) => `${proc.pid} ${proc.comm} (parent ${proc.ppid}, group ${proc.pgid})`),
			refed: extra,
		};
		// Zombies from before (`oldZombies`) are reported but do not keep it waiting.
		const newZombies = leaks.zombies.filter((zombie) => !oldZombies.has(zombie));
		const clean = leaks.fds === 0 && leaks.threads === 0 && leaks.live.length === 0 && newZombies.length === 0 && Object.keys(extra).length === 0;
		if (clean || performance.now() > deadline) {
			return leaks;
		}
		await delay(50);
	}
}

export const NO_LEAKS: Leaks = { fds: 0, threads: 0, live: [], zombies: [], refed: {} };
