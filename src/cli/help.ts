const LIMITS = `Limits (each call; durations as "500ms", "5s", "2m" or seconds; sizes as "512mb", "2gb" or bytes):
  --wall-time D          wall-clock time from the call's start
  --cpu-time D           CPU time of the thread or process that runs the call
  --memory S             memory; what it caps is --memory-kind
  --memory-kind K        heap (V8 heap of the thread), rss (all resident memory: the call runs
                         in a forked process) or auto (heap in the thread, moved to a process
                         when memory outside the heap passes the limit)   [default: auto]
  --grace D              time a stopped call gets to end on its own   [default: 0]
  --executor E           threads, processes or sequential   [default: threads]
`;

/** `byop --help`. */
export const MAIN_HELP = `Usage: byop <command> [options]

Runs functions of JavaScript or TypeScript modules on worker threads or processes, with
wall-time, CPU-time and memory limits on every call.

Commands:
  run <module>[#<export>] [args…]   one call under limits; prints its result as JSON
  map <module>[#<export>]           a function over JSON Lines; one JSON line per input
  demo                              the scheduler and its limits at work on a small workload
  worker --redis <url> --queue <name>
                                    a worker host: runs the calls of Scheduler.withBullMQ

Options:
  -h, --help       this help (byop <command> --help: a command's)
  -v, --version    byop's version

<module> is a path (from the current directory) or a package name; <export> defaults to
"default". TypeScript modules need tsx installed.
`;

/** `byop run --help`. */
export const RUN_HELP = `Usage: byop run [options] <module>[#<export>] [args…]

Calls one exported function under limits and prints its result as JSON on stdout, and what it
used (wall time, CPU time, peak memory, where it ran) on stderr. Each argument is parsed as JSON
when it is valid JSON ("42", "[1,2]", '{"a":1}', "true"), else passed as a string. Arguments
after <module> are the call's, even when they start with "-".

${LIMITS}
Output:
  --json                 one JSON object on stdout: {"ok":true,"result":…,"usage":{…}} or
                         {"ok":false,"error":{"name","message","code"},"usage":{…}}
  -h, --help             this help

Exit codes:
  0    the call returned
  1    the call threw (its error on stderr: name, code, message)
  2    bad usage: an unknown option, a bad value, a module or export that cannot be loaded
  124  the wall-time limit was passed (as timeout(1))
  130  interrupted (Ctrl-C); the call's thread or process is stopped first
  137  the memory limit was passed
  152  the CPU-time limit was passed (SIGXCPU, as a shell shows it)

Example:
  byop run --wall-time 2s --memory 256mb ./jobs.mjs#add 2 3
`;

/** `byop map --help`. */
export const MAP_HELP = `Usage: byop map [options] <module>[#<export>]

Calls an exported function once per line of a JSON Lines input: a line that is an array is the
call's arguments, any other value its only argument. Writes one JSON line per input, as the
results arrive:
  {"index":i,"ok":true,"result":…,"usage":{…}}
  {"index":i,"ok":false,"error":{"name","message","code"},"usage":{…}}
A failed call, a limit hit and a malformed input line each give an "ok":false line; the others
go on. "index" is the input's line number, from 0; blank lines are skipped.

${LIMITS}
Data:
  -c, --concurrency N    calls at once   [default: the machine's available parallelism]
  -i, --input FILE       JSON Lines to read   [default: stdin]
  -o, --output FILE      where to write   [default: stdout]
  --keep-order           write the lines in input order (holds later results back)
  --resume               with --output: skip the inputs already in FILE, append the rest
  --progress             draw a progress bar on stderr even when it is not a terminal
  --no-progress          no progress bar   [default: a bar when stderr is a terminal]
  -h, --help             this help

Exit codes:
  0    every input gave an "ok":true line
  1    some inputs failed (their lines say why); every input still has its line
  2    bad usage, or a module or export that cannot be loaded
  130  interrupted (Ctrl-C): the calls under way are stopped, the lines of finished ones
       are written; --resume carries on from there

Example:
  printf '[1,2]\\n[3,4]\\n' | byop map --wall-time 1s ./jobs.mjs#add
`;

/** `byop worker --help`. */
export const WORKER_HELP = `Usage: byop worker --redis <url> --queue <name> [options]

Starts a worker host for Scheduler.withBullMQ: takes the calls a scheduler puts on a BullMQ
queue in Redis and runs each on this machine's threads or processes, under the call's own
limits. Results, errors, limit errors and what each call used go back to the scheduler.
A job only names its function: this host loads modules under --root and the packages named
by --allow, and refuses any other module without importing it.

Options:
  --redis URL            redis://[user:password@]host[:port][/db], rediss:// for TLS
                         [default: $BYOP_REDIS_URL, which keeps a password off the command line]
  --queue NAME           the queue (the scheduler's queueName)
  --prefix P             BullMQ's key prefix (the scheduler's prefix)   [default: byop]
  -c, --concurrency N    calls at once   [default: the machine's available parallelism]
  --executor E           threads or processes   [default: threads]
  --root DIR             module files are loaded from under DIR only   [default: the current
                         directory]; the scheduler sends paths relative to its own root
  --allow PKG            a package whose modules may be loaded (repeat it, or PKG1,PKG2)
  --grace D              on SIGINT/SIGTERM, how long running calls may still finish before
                         they are stopped   [default: 30s]
  --name NAME            this host's name in usage.host and logs   [default: hostname:pid]
  -h, --help             this help

SIGINT or SIGTERM: takes no new jobs, lets running calls finish (stops them after --grace;
a second signal stops them at once), then exits with 0. One line on stderr at start and at
stop; a Redis password never appears in them.

Example:
  byop worker --redis redis://127.0.0.1:6379 --queue jobs --root ./app --concurrency 4
`;
