import { describe, expect, it } from "vitest";
import { CommandError, type Runner, type RunResult } from "../system/exec.js";
import {
	assertInterfaceName,
	type ChildExit,
	KernelBackend,
	PERMISSION_DENIED_MESSAGE,
	type ProcessSpawner,
	selectBackend,
	UserspaceBackend,
	WireGuardBackendError,
} from "./backend.js";

interface Call {
	command: string;
	args: readonly string[];
}

/** A Runner answering from `answer` (a result, or a missing binary), with run()'s failure contract. */
function scriptedRunner(answer: (line: string) => Partial<RunResult> | "missing"): {
	runner: Runner;
	calls: Call[];
} {
	const calls: Call[] = [];
	const runner: Runner = async (command, args, options = {}) => {
		calls.push({ command, args });
		const line = [command, ...args].join(" ");
		const scripted = answer(line);
		if (scripted === "missing") {
			throw new CommandError(
				`${command} is not installed (not found in PATH)`,
				command,
				undefined,
				"",
			);
		}
		const result: RunResult = { stdout: "", stderr: "", exitCode: 0, ...scripted };
		if (result.exitCode !== 0 && !options.allowFailure) {
			throw new CommandError(`${line}: ${result.stderr}`, command, result.exitCode, result.stderr);
		}
		return result;
	};
	return { runner, calls };
}

const UNKNOWN_DEVICE = { exitCode: 2, stderr: "Error: Unknown device type." };
const NOT_PERMITTED = { exitCode: 2, stderr: "RTNETLINK answers: Operation not permitted" };

describe("selectBackend", () => {
	it("auto takes the kernel module when a probe link can be made, and deletes the probe", async () => {
		const { runner, calls } = scriptedRunner(() => ({}));
		const backend = await selectBackend("auto", runner);
		expect(backend.kind).toBe("kernel");
		const probe = calls.find((call) => call.args[1] === "add")?.args[3];
		expect(probe).toMatch(/^wgprobe[0-9a-f]{6}$/);
		expect(probe?.length).toBeLessThanOrEqual(15);
		expect(calls.map((call) => [call.command, ...call.args].join(" "))).toContain(
			`ip link del dev ${probe}`,
		);
	});

	it("auto falls back to wireguard-go when the kernel has no WireGuard", async () => {
		const { runner } = scriptedRunner((line) =>
			line.startsWith("ip link add") ? UNKNOWN_DEVICE : {},
		);
		expect((await selectBackend("auto", runner)).kind).toBe("userspace");
	});

	it("says in one line when neither works", async () => {
		const { runner } = scriptedRunner((line) =>
			line.startsWith("ip link add")
				? UNKNOWN_DEVICE
				: line.startsWith("wireguard-go")
					? "missing"
					: {},
		);
		await expect(selectBackend("auto", runner)).rejects.toThrow(
			"no WireGuard available: the kernel cannot create WireGuard interfaces (Error: Unknown device type.) and wireguard-go is not installed",
		);
		await expect(selectBackend("kernel", runner)).rejects.toThrow(/use the userspace backend/);
		await expect(selectBackend("userspace", runner)).rejects.toThrow(
			"wireguard-go is not installed: install wireguard-go",
		);
	});

	it("reports a missing privilege as such", async () => {
		const { runner } = scriptedRunner((line) =>
			line.startsWith("ip link add") ? NOT_PERMITTED : {},
		);
		const error = await selectBackend("auto", runner).catch((caught: unknown) => caught);
		expect(error).toBeInstanceOf(WireGuardBackendError);
		expect((error as Error).message).toBe(PERMISSION_DENIED_MESSAGE);
	});

	it("needs wg in every case", async () => {
		const { runner } = scriptedRunner((line) => (line.startsWith("wg ") ? "missing" : {}));
		await expect(selectBackend("auto", runner)).rejects.toThrow(
			"wg is not installed: install wireguard-tools",
		);
	});
});

describe("KernelBackend", () => {
	it("reuses an existing WireGuard link and refuses a foreign one", async () => {
		const existing = scriptedRunner((line) =>
			line.startsWith("ip -j -d link show")
				? { stdout: '[{"ifname":"starling0","linkinfo":{"info_kind":"wireguard"}}]' }
				: {},
		);
		await new KernelBackend(existing.runner).createInterface("starling0");
		expect(existing.calls.some((call) => call.args.includes("add"))).toBe(false);

		const foreign = scriptedRunner(() => ({
			stdout: '[{"ifname":"starling0","linkinfo":{"info_kind":"veth"}}]',
		}));
		await expect(new KernelBackend(foreign.runner).createInterface("starling0")).rejects.toThrow(
			/not a kernel WireGuard interface \(kind veth\)/,
		);
	});

	it("maps a permission failure to the one-line message", async () => {
		const { runner } = scriptedRunner((line) =>
			line.startsWith("ip -j -d link show")
				? { exitCode: 1, stderr: 'Device "starling0" does not exist.' }
				: NOT_PERMITTED,
		);
		await expect(new KernelBackend(runner).createInterface("starling0")).rejects.toThrow(
			PERMISSION_DENIED_MESSAGE,
		);
	});
});

describe("UserspaceBackend start-up failures", () => {
	/** A wireguard-go that prints `lines` and exits with `code` right away. */
	function failingSpawner(lines: string[], code: number): ProcessSpawner {
		return (_command, _args, options) => {
			for (const line of lines) options.onOutputLine(line);
			return {
				pid: 4242,
				exited: Promise.resolve<ChildExit>({ code, signal: null }),
				kill: () => {},
			};
		};
	}
	const nothingThere = scriptedRunner(() => ({ exitCode: 1 }));

	it("turns wireguard-go's TUN permission error into the one-line message", async () => {
		const backend = new UserspaceBackend({
			runner: nothingThere.runner,
			spawn: failingSpawner(
				[
					"ERROR: (starling0) 2026/11/29 04:07:25 Failed to create TUN device: operation not permitted",
				],
				1,
			),
		});
		await expect(backend.createInterface("starling0")).rejects.toThrow(PERMISSION_DENIED_MESSAGE);
		expect(backend.processIdOf("starling0")).toBeUndefined();
	});

	it("passes on wireguard-go's last words otherwise", async () => {
		const backend = new UserspaceBackend({
			runner: nothingThere.runner,
			spawn: failingSpawner(
				["ERROR: (starling0) 2026/11/29 04:07:25 UAPI listen error: unix socket in use"],
				1,
			),
		});
		await expect(backend.createInterface("starling0")).rejects.toThrow(
			"wireguard-go for starling0 exited while starting (exit code 1): ERROR: (starling0) 2026/11/29 04:07:25 UAPI listen error: unix socket in use",
		);
	});
});

describe("UserspaceBackend readiness", () => {
	it("asks wg only once the control socket listens (wg unlinks a socket that is bound but not listening)", async () => {
		const listeningAfter = 3;
		let looks = 0;
		const { runner, calls } = scriptedRunner((line) => {
			if (line.startsWith("ss ")) {
				looks++;
				// Before that: bound, not listening yet, so ss lists nothing in state listening.
				return {
					stdout:
						looks >= listeningAfter ? "u_str 0 4096 /var/run/wireguard/starling0.sock 1 * 0\n" : "",
				};
			}
			// No link and no socket left by an earlier run.
			if (line.startsWith("ip ") || line.startsWith("test ")) return { exitCode: 1 };
			return {};
		});
		const running: ProcessSpawner = () => ({
			pid: 4242,
			exited: new Promise<ChildExit>(() => {}),
			kill: () => {},
		});
		await new UserspaceBackend({ runner, spawn: running }).createInterface("starling0");
		const lines = calls.map((call) => [call.command, ...call.args].join(" "));
		const looksAt = lines.flatMap((line, i) => (line.startsWith("ss ") ? [i] : []));
		expect(lines[looksAt[0]!]).toBe(
			"ss -xnH state listening src /var/run/wireguard/starling0.sock",
		);
		expect(looksAt).toHaveLength(listeningAfter);
		expect(lines.findIndex((line) => line.startsWith("wg "))).toBeGreaterThan(looksAt.at(-1)!);
	});
});

describe("assertInterfaceName", () => {
	it("accepts Linux interface names and nothing that could escape a path", () => {
		expect(() => assertInterfaceName("starling0")).not.toThrow();
		for (const name of ["", "..", "a/b", "../../etc", "with space", "sixteen-chars-xx"]) {
			expect(() => assertInterfaceName(name), name).toThrow(WireGuardBackendError);
		}
	});
});
