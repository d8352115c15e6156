import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseDuration, parseMemory } from "../src/index.ts";
import { parseCount, parseGrace, parseOptionalDuration, parseOptionalMemory } from "../src/units.ts";

describe("durations", () => {
	it("read [value, unit] pairs in s, m and h", () => {
		assert.equal(parseDuration("t", [5, "s"]), 5000);
		assert.equal(parseDuration("t", [5, "m"]), 300_000);
		assert.equal(parseDuration("t", [1.5, "h"]), 5_400_000);
		assert.equal(parseDuration("t", [250, "ms"]), 250);
	});

	it("read strings with ms and bare numbers as seconds", () => {
		assert.equal(parseDuration("t", "5m"), 300_000);
		assert.equal(parseDuration("t", "90s"), 90_000);
		assert.equal(parseDuration("t", "2 h"), 7_200_000);
		assert.equal(parseDuration("t", "3"), 3000);
		assert.equal(parseDuration("t", 2.5), 2500);
	});

	it("reject zero, negative, NaN and infinite values with a RangeError naming the option and value", () => {
		for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, "0s", "-5m", [0, "s"], [-2, "m"]]) {
			assert.throws(() => parseDuration("wallTimeLimit", bad), (error: Error) => {
				assert.ok(error instanceof RangeError, `RangeError for ${String(bad)}`);
				assert.match(error.message, /`wallTimeLimit`/);
				return true;
			});
		}
		assert.throws(() => parseDuration("wallTimeLimit", -1), { message: "Expected `wallTimeLimit` to be a positive duration ([value, \"s\" | \"m\" | \"h\"], \"5m\", or seconds), got `-1` (number)" });
	});

	it("reject unknown units and malformed strings", () => {
		assert.throws(() => parseDuration("timeout", [5, "days"]), (error: Error) => error instanceof RangeError && /unknown time unit "days"/.test(error.message));
		assert.throws(() => parseDuration("timeout", "five minutes"), RangeError);
		assert.throws(() => parseDuration("timeout", "5 parsecs"), RangeError);
	});

	it("reject wrong types with a TypeError", () => {
		for (const bad of [null, true, {}, [5], ["5", "s"], () => 5, 5n, Symbol("x")]) {
			assert.throws(() => parseDuration("timeout", bad), TypeError);
		}
	});

	it("leave undefined optional values alone and allow a zero grace period", () => {
		assert.equal(parseOptionalDuration("t", undefined), undefined);
		assert.equal(parseOptionalMemory("m", undefined), undefined);
		assert.equal(parseGrace("gracePeriod", 0), 0);
		assert.equal(parseGrace("gracePeriod", "0"), 0);
		assert.equal(parseGrace("gracePeriod", "250ms"), 250);
		assert.throws(() => parseGrace("gracePeriod", -1), /`gracePeriod`/);
	});
});

describe("memory sizes", () => {
	it("read [value, unit] pairs with 1 kb = 1024 b", () => {
		assert.equal(parseMemory("m", [1, "b"]), 1);
		assert.equal(parseMemory("m", [1, "kb"]), 1024);
		assert.equal(parseMemory("m", [2, "mb"]), 2 * 1024 ** 2);
		assert.equal(parseMemory("m", [2, "gb"]), 2 * 1024 ** 3);
		assert.equal(parseMemory("m", [0.5, "GB"]), 512 * 1024 ** 2);
	});

	it("read strings and bare numbers as bytes", () => {
		assert.equal(parseMemory("m", "2gb"), 2 * 1024 ** 3);
		assert.equal(parseMemory("m", "512mb"), 512 * 1024 ** 2);
		assert.equal(parseMemory("m", "64 MB"), 64 * 1024 ** 2);
		assert.equal(parseMemory("m", "4096"), 4096);
		assert.equal(parseMemory("m", 1_000_000), 1_000_000);
	});

	it("reject bad values with errors naming the option", () => {
		for (const bad of [0, -5, Number.NaN, "0mb", "-1gb", [0, "mb"]]) {
			assert.throws(() => parseMemory("memoryLimit", bad), (error: Error) => error instanceof RangeError && /`memoryLimit`/.test(error.message));
		}
		assert.throws(() => parseMemory("memoryLimit", [2, "pb"]), (error: Error) => error instanceof RangeError && /unknown memory unit "pb"/.test(error.message));
		assert.throws(() => parseMemory("memoryLimit", "lots"), RangeError);
		assert.throws(() => parseMemory("memoryLimit", "2 gigs"), RangeError);
		assert.throws(() => parseMemory("memoryLimit", null), TypeError);
		assert.throws(() => parseMemory("memoryLimit", { gb: 2 }), TypeError);
	});
});

describe("counts", () => {
	it("accept positive integers and reject everything else", () => {
		assert.equal(parseCount("maxWorkers", 3), 3);
		assert.throws(() => parseCount("maxWorkers", 0), RangeError);
		assert.throws(() => parseCount("maxWorkers", 1.5), RangeError);
		assert.throws(() => parseCount("maxWorkers", "2"), (error: Error) => error instanceof TypeError && /`maxWorkers`.*`"2"` \(string\)/.test(error.message));
	});
});
