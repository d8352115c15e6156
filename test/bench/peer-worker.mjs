// The no-op of the dispatch benchmarks as a piscina / tinypool worker (plain ESM, no loader).
export default function add({ a, b }) {
	return a + b;
}
