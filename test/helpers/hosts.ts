import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The repository's root: the hosts' `--root` and the schedulers'. */
export const REPO = fileURLToPath(new URL("../../", import.meta.url)).replace(/\/$/, "");

/** A `byop worker` started as a user starts it, with what it writes on stderr. */
export class Host {
	readonly name: string;
	readonly child: ChildProcess;
	stderr = "";

	private constructor(name: string, child: ChildProcess) {
		this.name = name;
		this.child = child;
		child.stderr?.on("data", (chunk: Buffer) => {
			this.stderr += chunk.toString();
		});
	}

	get pid(): number {
		return this.child.pid as number;
	}

	/** Starts `byop worker` with `args` and resolves once it says it started (rejects if it exits first). */
	static async start(name: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<Host> {
		const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "worker", "--name", name, ...args], { cwd: REPO, env, stdio: ["ignore", "ignore", "pipe"] });
		const host = new Host(name, child);
		await new Promise<void>((resolve, reject) => {
			const timer = setTimeout(() => reject(new Error(`host ${name} did not start in 30 s: ${host.stderr}`)), 30_000);
			const check = (): void => {
				if (host.stderr.includes("started:")) {
					clearTimeout(timer);
					child.off("exit", exited);
					resolve();
				}
			};
			const exited = (code: number | null): void => {
				clearTimeout(timer);
				reject(new Error(`host ${name} exited with ${code}: ${host.stderr}`));
			};
			child.stderr?.on("data", check);
			child.once("exit", exited);
		});
		return host;
	}

	/** Resolves with its exit code once it has exited. */
	exited(): Promise<number | null> {
		if (this.child.exitCode !== null || this.child.signalCode !== null) {
			return Promise.resolve(this.child.exitCode);
		}
		return new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
	}

	/** Stops it with SIGTERM (SIGKILL if it has not exited in 20 s). */
	async stop(): Promise<void> {
		if (this.child.exitCode !== null || this.child.signalCode !== null) {
			return;
		}
		const exited = this.exited();
		this.child.kill("SIGTERM");
		const timer = setTimeout(() => this.child.kill("SIGKILL"), 20_000);
		await exited;
		clearTimeout(timer);
	}
}

/** Runs `byop worker` with `args` to its end: its exit code and output. */
export function runWorkerCommand(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
	return new Promise((resolve) => {
		const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "worker", ...args], { cwd: REPO, env, stdio: ["ignore", "pipe", "pipe"] });
		let stdout = "";
		let stderr = "";
		child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
		child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
		child.once("exit", (code) => resolve({ code, stdout, stderr }));
	});
}
