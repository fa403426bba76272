// Where the CLI keeps Node's compile cache (V8 code compiled from the bundle,
// reused by the next run so a command skips parsing and compiling it again).
import { enableCompileCache } from "node:module";
import { join } from "node:path";

/**
 * The cache directory for a process run by `uid` with `env`, or undefined for
 * no cache. STARLING_COMPILE_CACHE names a directory, or `off`; otherwise root
 * uses /var/cache/starling, other users $XDG_CACHE_HOME/starling or
 * ~/.cache/starling (relative XDG paths are ignored, as the XDG spec says).
 */
export function compileCacheDirectory(
	uid: number | undefined,
	env: Record<string, string | undefined>,
): string | undefined {
	const chosen = env.STARLING_COMPILE_CACHE;
	if (chosen === "off") return undefined;
	if (chosen) return chosen;
	if (uid === 0) return "/var/cache/starling/node-compile-cache";
	const xdg = env.XDG_CACHE_HOME;
	if (xdg?.startsWith("/")) return join(xdg, "starling/node-compile-cache");
	if (env.HOME?.startsWith("/")) return join(env.HOME, ".cache/starling/node-compile-cache");
	return undefined;
}

/**
 * Turns the compile cache on for the modules loaded from here on. A directory
 * that cannot be created or written (a read-only system, another user's
 * cache) only means no cache: Node reports that in its return value, and the
 * command runs as it would without one.
 */
export function enableCliCompileCache(): void {
	const directory = compileCacheDirectory(process.getuid?.(), process.env);
	if (directory === undefined) return;
	try {
		enableCompileCache(directory);
	} catch {
		// An older runtime or an unexpected failure: run without the cache.
	}
}
