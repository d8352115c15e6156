/** The reason a thread call is stopped when it has to move to a process (memory outside its heap). */
export class EscalationSignal extends Error {
    name = "EscalationSignal";
}
