import { describe, expect, it } from "vitest";
import { parseUnitEnvironment, renderUnit } from "./systemd.js";
import { isUnsafeToPurge } from "./uninstall.js";

describe("the systemd unit", () => {
	it("runs the given node with the daemon's V8 flags and CLI, and carries the environment it was installed with", () => {
		const unit = renderUnit("/opt/starling/bin/node", "/opt/starling/lib/starling.js", {
			STARLING_DATA_DIR: "/srv/starling",
			STARLING_SOCKET: "/run/starling.sock",
		});
		expect(unit).toContain(
			"ExecStart=/opt/starling/bin/node --max-semi-space-size=1 /opt/starling/lib/starling.js service run",
		);
		expect(parseUnitEnvironment(unit)).toEqual({
			STARLING_DATA_DIR: "/srv/starling",
			STARLING_SOCKET: "/run/starling.sock",
		});
		// No empty run of lines where the environment would be.
		expect(renderUnit("/n", "/c")).not.toMatch(/\n\n\n/);
		expect(parseUnitEnvironment(renderUnit("/n", "/c"))).toEqual({});
	});
});

describe("purge safety", () => {
	it("never purges the root or a system folder, whatever the unit or flag says", () => {
		for (const path of [
			"/",
			"/var/lib",
			"/var/lib/",
			"/var",
			"/etc",
			"/opt",
			"/usr",
			"/tmp",
			"/home",
			"/var/lib/..",
			"//",
		]) {
			expect(isUnsafeToPurge(path), path).toBe(true);
		}
		for (const path of ["/var/lib/starling", "/srv/starling", "/var/lib/starling/agent"]) {
			expect(isUnsafeToPurge(path), path).toBe(false);
		}
	});
});
