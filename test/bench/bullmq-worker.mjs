// A bare BullMQ worker process, the reference of section 11: `node bullmq-worker.mjs <redis url>
// <queue> <prefix> <concurrency>`. Its processor is the no-op of the benchmark; it writes "ready"
// once connected and stops on SIGTERM.
import { Worker } from "bullmq";

const [url, queueName, prefix, concurrency] = process.argv.slice(2);
const { hostname, port } = new URL(url);
const worker = new Worker(queueName, async (job) => job.data.a + job.data.b, {
	connection: { host: hostname, port: Number(port), maxRetriesPerRequest: null },
	prefix,
	concurrency: Number(concurrency),
});
await worker.waitUntilReady();
process.stderr.write("ready\n");
process.once("SIGTERM", () => {
	void worker.close().then(() => process.exit(0));
});
