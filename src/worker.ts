// What code inside a task may import: the context of the call it runs in.
export { currentCall, taskSignal, type CallContext } from "./worker/context.ts";
export { comm, type RequestOptions } from "./worker/comm.ts";
export { CommError, DataCloneError } from "./errors.ts";
