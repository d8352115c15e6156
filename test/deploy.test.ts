// The cluster files of docs/deploy/ (a Slurm job script, a Kubernetes Deployment) are valid, and
// start `byop worker` with arguments the command accepts.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { parseWorkerArgs } from "../src/cli/worker.ts";
import { UsageError } from "../src/cli/usage-error.ts";

const deploy = fileURLToPath(new URL("../docs/deploy/", import.meta.url));
const scratch = mkdtempSync(path.join(tmpdir(), "byop-deploy-"));
const SECRET = "s3cret-pass";

after(() => rmSync(scratch, { recursive: true, force: true }));

/** A project directory whose `node_modules/.bin/byop` writes the arguments it was given to `args`, one per line. */
function fakeProject(): string {
	const project = mkdtempSync(path.join(scratch, "project-"));
	mkdirSync(path.join(project, "node_modules", ".bin"), { recursive: true });
	const byop = path.join(project, "node_modules", ".bin", "byop");
	writeFileSync(byop, `#!/usr/bin/env bash\nprintf '%s\\n' "$@" > "${path.join(project, "args")}"\nprintf '%s' "$BYOP_REDIS_URL" > "${path.join(project, "url")}"\n`);
	chmodSync(byop, 0o755);
	return project;
}

describe("docs/deploy: starting worker hosts on a cluster", () => {
	it("the Slurm script parses, asks Slurm for a SIGTERM before its time limit, and runs byop worker with accepted arguments", () => {
		const script = path.join(deploy, "byop-worker.sbatch");
		const text = readFileSync(script, "utf8");
		const syntax = spawnSync("bash", ["-n", script], { encoding: "utf8" });
		assert.equal(syntax.status, 0, syntax.stderr);
		const directives = text.split("\n").filter((line) => line.startsWith("#SBATCH"));
		assert.ok(directives.length >= 5);
		for (const line of directives) {
			assert.match(line, /^#SBATCH --[a-z-]+(=\S+)?$/, line);
		}
		const signal = /^#SBATCH --signal=B:TERM@(\d+)$/m.exec(text);
		assert.ok(signal !== null, "asks for SIGTERM to the batch shell before the time limit");

		// Run it as Slurm would, with a byop that records what it was given.
		const project = fakeProject();
		const run = spawnSync("bash", [script], {
			encoding: "utf8",
			cwd: project,
			env: { PATH: process.env["PATH"], HOME: scratch, BYOP_REDIS_URL: `redis://:${SECRET}@redis.internal:6379`, BYOP_QUEUE: "train", SLURM_SUBMIT_DIR: project, SLURM_CPUS_PER_TASK: "8", SLURMD_NODENAME: "node7", SLURM_ARRAY_TASK_ID: "3" },
		});
		assert.equal(run.status, 0, run.stderr);
		const args = readFileSync(path.join(project, "args"), "utf8").trimEnd().split("\n");
		assert.equal(args[0], "worker");
		assert.ok(!args.join(" ").includes(SECRET), "the Redis URL is not on the command line");
		assert.equal(readFileSync(path.join(project, "url"), "utf8"), `redis://:${SECRET}@redis.internal:6379`);
		const settings = parseWorkerArgs(args.slice(1), { BYOP_REDIS_URL: `redis://:${SECRET}@redis.internal:6379` });
		assert.notEqual(settings, "help");
		if (settings === "help") return;
		assert.equal(settings.queueName, "train");
		assert.equal(settings.concurrency, 8);
		assert.equal(settings.name, "node7-3");
		assert.equal(settings.policy.root, project);
		assert.ok(settings.graceMs < Number(signal[1]) * 1000, "the grace period ends before Slurm's kill");

		// Without the URL, the script stops before starting anything.
		const missing = spawnSync("bash", [script], { encoding: "utf8", cwd: project, env: { PATH: process.env["PATH"], SLURM_SUBMIT_DIR: project } });
		assert.notEqual(missing.status, 0);
		assert.match(missing.stderr, /BYOP_REDIS_URL/);
	});

	it("the Kubernetes manifest is a Deployment whose pods run byop worker with accepted arguments and the URL from a Secret", () => {
		const manifest = parse(readFileSync(path.join(deploy, "byop-worker.yaml"), "utf8")) as {
			apiVersion: string;
			kind: string;
			spec: {
				replicas: number;
				selector: { matchLabels: Record<string, string> };
				template: {
					metadata: { labels: Record<string, string> };
					spec: { terminationGracePeriodSeconds: number; containers: { command: string[]; args: string[]; workingDir: string; env: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[] }[] };
				};
			};
		};
		assert.equal(manifest.apiVersion, "apps/v1");
		assert.equal(manifest.kind, "Deployment");
		assert.ok(manifest.spec.replicas >= 1);
		for (const [label, value] of Object.entries(manifest.spec.selector.matchLabels)) {
			assert.equal(manifest.spec.template.metadata.labels[label], value, "the selector matches the pods' labels");
		}
		const pod = manifest.spec.template.spec;
		assert.equal(pod.containers.length, 1);
		const container = pod.containers[0]!;
		assert.deepEqual(container.command, ["./node_modules/.bin/byop"]);
		assert.equal(container.args[0], "worker");
		assert.ok(!container.args.includes("--redis"), "the Redis URL is not on the command line");
		const url = container.env.find((entry) => entry.name === "BYOP_REDIS_URL");
		assert.ok(url?.valueFrom?.secretKeyRef !== undefined && url.value === undefined, "the Redis URL comes from a Secret");
		// `--root` is the image's working directory; here, a directory of the test's.
		const root = mkdtempSync(path.join(scratch, "app-"));
		const args = container.args.slice(1).map((arg) => (arg === container.workingDir ? root : arg));
		const settings = parseWorkerArgs(args, { BYOP_REDIS_URL: `rediss://:${SECRET}@redis.internal:6380` });
		assert.notEqual(settings, "help");
		if (settings === "help") return;
		assert.equal(settings.policy.root, root);
		assert.ok(settings.redis.tls !== undefined, "rediss:// is TLS");
		assert.ok(settings.graceMs < pod.terminationGracePeriodSeconds * 1000, "the grace period ends before Kubernetes kills the pod");
	});

	it("parseWorkerArgs refuses what the command refuses, naming the option, without the password", () => {
		assert.throws(() => parseWorkerArgs(["--queue", "q"], {}), (error: Error) => error instanceof UsageError && /--redis/.test(error.message));
		assert.throws(
			() => parseWorkerArgs(["--queue", "q", "--concurrency", "0"], { BYOP_REDIS_URL: `redis://:${SECRET}@h:1` }),
			(error: Error) => error instanceof UsageError && /concurrency/.test(error.message) && !error.message.includes(SECRET),
		);
		assert.equal(parseWorkerArgs(["--help"], {}), "help");
	});
});
