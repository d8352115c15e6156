// The package packed as users get it, built once for what it is made from: the suites that
// install it (the command, the packed package, the documentation examples) share one tarball,
// and so do later runs of the suite (on another Node line, say) while the sources stay the same.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
/** What the build and the tarball are made from. */
const INPUTS = ["package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json", "README.md", "src", "workers"];

/** A hash of the contents (and names) of every file the package is made from. */
function sourceHash(): string {
	const hash = createHash("sha256");
	const files = INPUTS.flatMap((input) => {
		const full = path.join(root, input);
		if (!existsSync(full)) {
			return [];
		}
		return input.includes(".") ? [input] : readdirSync(full, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile()).map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)));
	});
	for (const file of files.sort()) {
		hash.update(`${file}\0`);
		hash.update(readFileSync(path.join(root, file)));
		hash.update("\0");
	}
	return hash.digest("hex").slice(0, 20);
}

/**
 * The path of the packed package (`npm pack`, which builds it first): reused when one was packed
 * from the same sources, else packed now, into a folder of the system's temporary directory
 * named after the sources' hash.
 */
export function packedTarball(): string {
	const folder = path.join(tmpdir(), `byop-packed-${sourceHash()}`);
	const tarball = path.join(folder, "byop.tgz");
	if (existsSync(tarball)) {
		return tarball;
	}
	const staging = mkdtempSync(path.join(tmpdir(), "byop-packing-"));
	try {
		const env = { ...process.env, NODE_OPTIONS: "" };
		const name = execFileSync("npm", ["pack", "--pack-destination", staging, "--silent"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 180_000, env }).trim().split("\n").pop()!;
		mkdirSync(folder, { recursive: true });
		// A rename is atomic: a suite that looks at the same moment finds the whole tarball or none.
		renameSync(path.join(staging, name), tarball);
	} finally {
		rmSync(staging, { recursive: true, force: true });
	}
	return tarball;
}
