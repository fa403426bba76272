import { describe, expect, it } from "vitest";
import { compileCacheDirectory } from "./compile-cache.js";

describe("compileCacheDirectory", () => {
	it("puts root's cache under /var/cache/starling", () => {
		expect(compileCacheDirectory(0, { HOME: "/root", XDG_CACHE_HOME: "/root/.xdg" })).toBe(
			"/var/cache/starling/node-compile-cache",
		);
	});

	it("uses XDG_CACHE_HOME for other users, else ~/.cache", () => {
		expect(compileCacheDirectory(1000, { HOME: "/home/a", XDG_CACHE_HOME: "/xdg" })).toBe(
			"/xdg/starling/node-compile-cache",
		);
		expect(compileCacheDirectory(1000, { HOME: "/home/a" })).toBe(
			"/home/a/.cache/starling/node-compile-cache",
		);
	});

	it("ignores a relative XDG_CACHE_HOME or HOME", () => {
		expect(compileCacheDirectory(1000, { HOME: "/home/a", XDG_CACHE_HOME: "cache" })).toBe(
			"/home/a/.cache/starling/node-compile-cache",
		);
		expect(compileCacheDirectory(1000, { HOME: "home" })).toBeUndefined();
		expect(compileCacheDirectory(1000, {})).toBeUndefined();
	});

	it("follows STARLING_COMPILE_CACHE: a directory, or off", () => {
		expect(compileCacheDirectory(0, { STARLING_COMPILE_CACHE: "/tmp/c" })).toBe("/tmp/c");
		expect(compileCacheDirectory(0, { STARLING_COMPILE_CACHE: "off" })).toBeUndefined();
		expect(compileCacheDirectory(1000, { HOME: "/h", STARLING_COMPILE_CACHE: "" })).toBe(
			"/h/.cache/starling/node-compile-cache",
		);
	});

	it("has no cache when the platform has no uid and no home", () => {
		expect(compileCacheDirectory(undefined, {})).toBeUndefined();
	});
});
