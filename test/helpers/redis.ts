import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

/** Why the distributed tests cannot run here, or `undefined` when `redis-server` is there. */
export function redisMissing(): string | undefined {
	const probe = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
	if (probe.error !== undefined) {
		return `redis-server was not found on PATH (${(probe.error as NodeJS.ErrnoException).code ?? probe.error.message}); install it (Debian: apt-get install redis-server)`;
	}
	return probe.status === 0 ? undefined : `redis-server --version failed: ${probe.stderr}`;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.once("error", reject);
		server.listen(0, "127.0.0.1", () => {
			const address = server.address();
			server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
		});
	});
}

/** A `redis-server` on 127.0.0.1 that the tests started, with no persistence, in a temporary directory. */
export class RedisServer {
	readonly port: number;
	readonly password: string | undefined;
	readonly #child: ChildProcess;
	readonly #dir: string;

	private constructor(port: number, password: string | undefined, child: ChildProcess, dir: string) {
		this.port = port;
		this.password = password;
		this.#child = child;
		this.#dir = dir;
	}

	/** `redis://[:password@]127.0.0.1:port`. */
	get url(): string {
		return `redis://${this.password === undefined ? "" : `:${encodeURIComponent(this.password)}@`}127.0.0.1:${this.port}`;
	}

	/** Starts one and resolves once it accepts connections. */
	static async start(password?: string): Promise<RedisServer> {
		const port = await freePort();
		const dir = mkdtempSync(path.join(tmpdir(), "byop-redis-"));
		const args = ["--port", String(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--dir", dir];
		if (password !== undefined) {
			args.push("--requirepass", password);
		}
		const child = spawn("redis-server", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
		let output = "";
		await new Promise<void>((resolve, reject) => {
			const timer = setTimeout(() => reject(new Error(`redis-server did not start in 10 s: ${output}`)), 10_000);
			child.stdout?.on("data", (chunk: Buffer) => {
				output += chunk.toString();
				if (output.includes("Ready to accept connections")) {
					clearTimeout(timer);
					resolve();
				}
			});
			child.once("exit", (code) => {
				clearTimeout(timer);
				reject(new Error(`redis-server exited with ${code}: ${output}`));
			});
		});
		child.stdout?.resume();
		return new RedisServer(port, password, child, dir);
	}

	/** Stops it and removes its directory. */
	async stop(): Promise<void> {
		if (this.#child.exitCode === null && this.#child.signalCode === null) {
			const exited = new Promise((resolve) => this.#child.once("exit", resolve));
			this.#child.kill("SIGTERM");
			await exited;
		}
		rmSync(this.#dir, { recursive: true, force: true });
	}
}
