/** How many values `findUncloneable` looks at before it trusts the rest. */
const WALK_LIMIT = 50_000;

/**
 * Looks through a result for what the structured clone algorithm refuses (functions, symbols,
 * promises, weak collections) and describes where it is, e.g. "a function at .model.predict".
 */
export function findUncloneable(root: unknown): string | undefined {
	if (typeof root !== "object" && typeof root !== "function" && typeof root !== "symbol") {
		return undefined;
	}
	const stack: [unknown, string][] = [[root, ""]];
	const seen = new Set<object>();
	let visited = 0;
	while (stack.length > 0 && visited++ < WALK_LIMIT) {
		const [value, path] = stack.pop()!;
		if (typeof value === "function" || typeof value === "symbol") {
			return `a ${typeof value}${path === "" ? "" : ` at ${path}`}`;
		}
		if (typeof value !== "object" || value === null || seen.has(value) || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
			continue;
		}
		seen.add(value);
		if (value instanceof Promise || value instanceof WeakMap || value instanceof WeakSet) {
			return `a ${value.constructor.name}${path === "" ? "" : ` at ${path}`}`;
		}
		if (value instanceof Map) {
			for (const [key, item] of value) {
				stack.push([key, `${path}<key>`], [item, `${path}.get(${String(key)})`]);
			}
		} else if (value instanceof Set) {
			for (const item of value) {
				stack.push([item, `${path}<item>`]);
			}
		} else if (!(value instanceof Date) && !(value instanceof RegExp) && !(value instanceof Error)) {
			for (const key of Object.keys(value)) {
				stack.push([(value as Record<string, unknown>)[key], Array.isArray(value) ? `${path}[${key}]` : `${path}.${key}`]);
			}
		}
	}
	return undefined;
}
