// The no-op of the dispatch benchmarks as a workerpool worker (plain ESM, no loader).
import workerpool from "workerpool";

workerpool.worker({
	add(a, b) {
		return a + b;
	},
});
