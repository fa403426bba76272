// uninstallAgent's file side on a temporary folder: the sockets a killed
// daemon left behind. The system commands it runs (systemctl, ip, nft) go to a
// runner that finds nothing installed, so that this test never touches the
// machine's own interfaces, tables or units (the lab test
// ../../test/install-uninstall.test.ts runs them for real).
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { statusSocketPath } from "../daemon/status-wire.js";
import type { Runner } from "../system/exec.js";
import { ServiceManager } from "./systemd.js";
import { uninstallAgent } from "./uninstall.js";

let dir: string;

beforeEach(() => {
	dir = mkdtempSync(join(tmpdir(), "starling-uninstall-"));
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("uninstallAgent", () => {
	it("removes the gRPC socket and the status socket beside it that a killed daemon left", async () => {
		const commands: string[] = [];
		const nothingInstalled: Runner = async (command, args) => {
			commands.push([command, ...args].join(" "));
			return { stdout: "", stderr: "not found", exitCode: 1 };
		};
		const socketPath = join(dir, "starling.sock");
		// What a SIGKILLed daemon leaves: socket files nobody listens on.
		writeFileSync(socketPath, "");
		writeFileSync(statusSocketPath(socketPath), "");
		const unitDir = join(dir, "systemd");
		mkdirSync(unitDir);
		const manager = new ServiceManager(nothingInstalled, unitDir, join(dir, "no-systemd"));

		await uninstallAgent(nothingInstalled, manager, {
			stateDir: join(dir, "state"),
			socketPath,
			purge: false,
		});

		expect(existsSync(socketPath)).toBe(false);
		expect(existsSync(statusSocketPath(socketPath))).toBe(false);
		// Only looked for what it would remove: nothing was there to delete.
		expect(commands.filter((c) => / (del|delete) /.test(c))).toEqual([]);
	});
});
