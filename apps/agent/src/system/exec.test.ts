// The command runner with real processes: what the agent relied on when it
// used execa (UTF-8 output split anywhere, one final newline stripped, LC_ALL=C
// on top of the environment, one-line failures, the timeout) still holds.
import { describe, expect, it } from "vitest";
import { CommandError, run } from "./exec.js";

async function failure(promise: Promise<unknown>): Promise<CommandError> {
	const err = await promise.then(
		() => undefined,
		(e: unknown) => e,
	);
	expect(err).toBeInstanceOf(CommandError);
	return err as CommandError;
}

describe("run", () => {
	it("reads a large UTF-8 output whole, however the pipe splits it, without its final newline", async () => {
		// 3-byte and 2-byte characters over many 64 KiB pipe reads.
		const line = "€ünïcødé";
		const r = await run("sh", ["-c", `yes '${line}' | head -n 40000`]);
		expect(r.exitCode).toBe(0);
		expect(r.stdout).toBe(Array(40_000).fill(line).join("\n"));
	});

	it("runs with LC_ALL=C on top of the daemon's environment, and passes input on stdin", async () => {
		process.env.STARLING_EXEC_TEST = "kept";
		try {
			const r = await run("sh", ["-c", 'echo "$LC_ALL $STARLING_EXEC_TEST"; cat']);
			expect(r.stdout).toBe("C kept");
		} finally {
			delete process.env.STARLING_EXEC_TEST;
		}
		expect((await run("cat", [], { input: "table inet t {}\n" })).stdout).toBe("table inet t {}");
	});

	it("fails with the command's first error line and its exit code, or returns them when failure is allowed", async () => {
		const script = "echo out; printf '\\n  first problem\\nsecond\\n' >&2; exit 3";
		const err = await failure(run("sh", ["-c", script]));
		expect(err.message).toBe(`sh -c ${script}: first problem`);
		expect(err.exitCode).toBe(3);
		expect(err.stderr).toBe("\n  first problem\nsecond");
		const allowed = await run("sh", ["-c", script], { allowFailure: true });
		expect(allowed).toEqual({ stdout: "out", stderr: "\n  first problem\nsecond", exitCode: 3 });
	});

	it("says in one line that a command is not installed", async () => {
		const err = await failure(run("starling-no-such-command", ["x"]));
		expect(err.message).toBe("starling-no-such-command is not installed (not found in PATH)");
		expect(err.exitCode).toBeUndefined();
		const allowed = await run("starling-no-such-command", [], { allowFailure: true });
		expect(allowed.exitCode).toBe(-1);
	});

	it("stops a command at its timeout, and reports one killed by a signal", async () => {
		const started = Date.now();
		const slow = await failure(run("sleep", ["30"], { timeoutMs: 200 }));
		expect(Date.now() - started).toBeLessThan(5_000);
		expect(slow.message).toBe("sleep 30: Command timed out after 200 milliseconds: sleep 30");
		const killed = await failure(run("sh", ["-c", "kill -KILL $$"]));
		expect(killed.message).toBe(
			"sh -c kill -KILL $$: Command was killed with SIGKILL: sh -c kill -KILL $$",
		);
		expect(killed.exitCode).toBeUndefined();
		expect((await run("sh", ["-c", "kill -KILL $$"], { allowFailure: true })).exitCode).toBe(-1);
	});
});
