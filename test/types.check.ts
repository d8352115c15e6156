// Compile-only checks of the typed events: `npm test` type-checks this file and never runs it.
import { CommPlugin, type CommMessage, type Future, Scheduler, Task } from "../src/index.ts";
import { type CpuTimeLimitError, PynisherPlugin, type WallTimeLimitError } from "../src/pynisher/index.ts";

declare const task: Task;
declare const scheduler: Scheduler;
const pynisher = new PynisherPlugin();

task.on(Task.RESULT, (future: Future, result: unknown) => [future, result]);
task.on(Task.DONE, (future) => future.usage?.wallMs);
task.on(pynisher.WALL_TIME_LIMIT_REACHED, (error: WallTimeLimitError) => error.observed);
task.on(pynisher.TIMEOUT, (error: WallTimeLimitError | CpuTimeLimitError) => error.limit);
scheduler.on(Scheduler.FINISHED, (exit) => exit.code);
scheduler.on(Scheduler.STOP, (reason: string) => reason);
const off: () => void = scheduler.on(Scheduler.EMPTY, () => {});
off();
const comm = new CommPlugin();
task.on(CommPlugin.MESSAGE, (message: CommMessage) => [message.data, message.future, message.task]);
task.on(comm.REQUEST, (request) => request.respond(request.data));
task.on(CommPlugin.CLOSE, ({ future }) => future.state);

// @ts-expect-error RESULT handlers receive a Future first, not a number.
task.on(Task.RESULT, (future: number) => future);
// @ts-expect-error DONE has one argument; a handler cannot require a second one.
task.on(Task.DONE, (future: Future, extra: string) => [future, extra]);
// @ts-expect-error a wall-time handler does not receive a CPU-time error.
task.on(pynisher.WALL_TIME_LIMIT_REACHED, (error: CpuTimeLimitError) => error);
// @ts-expect-error the exit state's code is a known union.
scheduler.on(Scheduler.FINISHED, (exit) => exit.code === "finished");
// @ts-expect-error event keys are declared with defineEvent, not plain strings.
task.on("task:result", () => {});
// @ts-expect-error a MESSAGE has no respond(): only a REQUEST can be answered.
task.on(CommPlugin.MESSAGE, (message) => message.respond(1));
