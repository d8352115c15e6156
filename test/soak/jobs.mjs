// Plain JavaScript jobs for the soak run: they load in a thread without any loader hooks.
export function echo(value) {
	return value;
}

export async function nap(ms) {
	await new Promise((resolve) => setTimeout(resolve, ms));
	return ms;
}

export function spin(ms) {
	const end = performance.now() + ms;
	let x = 0;
	while (performance.now() < end) {
		x++;
	}
	return x;
}

export function raise(message) {
	throw new Error(message);
}

export function exitWith(code) {
	process.exit(code);
}
