// The comm benchmark's job module: a task that floods the main side with small messages.
import { comm } from "byop/worker";

/** Sends `count` small messages, each as soon as the window has room. */
export async function flood(count) {
	for (let i = 0; i < count; i++) {
		await comm.send(i);
	}
	return count;
}
