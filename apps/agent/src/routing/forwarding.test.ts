import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import {
	FORWARDING_RECORD_FILE,
	Forwarding,
	type ForwardingRecord,
	type ForwardingSysctl,
	fileForwardingRecord,
	planForwarding,
} from "./forwarding.js";

/** The sysctl as a variable: the kernel's value, which outlives the agent. */
function memorySysctl(initial: string): ForwardingSysctl & { value: string; writes: string[] } {
	const s = {
		value: initial,
		writes: [] as string[],
		read: async () => s.value,
		write: async (v: string) => {
			s.writes.push(v);
			s.value = v;
		},
	};
	return s;
}

/** The record as a variable: the state folder, which outlives the agent. */
function memoryRecord(): ForwardingRecord & { saved: string | undefined } {
	const r = {
		saved: undefined as string | undefined,
		load: () => r.saved,
		save: (v: string) => {
			r.saved = v;
		},
		clear: () => {
			r.saved = undefined;
		},
	};
	return r;
}

describe("planForwarding", () => {
	it("records the machine's value before turning forwarding on", () => {
		expect(planForwarding(true, undefined, "0")).toEqual([
			{ kind: "record", previous: "0" },
			{ kind: "write", value: "1" },
		]);
	});

	it("writes nothing when forwarding was on already, but still records it", () => {
		expect(planForwarding(true, undefined, "1")).toEqual([{ kind: "record", previous: "1" }]);
	});

	it("keeps the first record while on, repairing a value changed under it", () => {
		expect(planForwarding(true, "0", "1")).toEqual([]);
		expect(planForwarding(true, "0", "0")).toEqual([{ kind: "write", value: "1" }]);
	});

	it("writes the recorded value back, then drops the record", () => {
		expect(planForwarding(false, "0", "1")).toEqual([
			{ kind: "write", value: "0" },
			{ kind: "clear-record" },
		]);
		expect(planForwarding(false, "1", "1")).toEqual([{ kind: "clear-record" }]);
	});

	it("leaves a value it never changed alone", () => {
		expect(planForwarding(false, undefined, "1")).toEqual([]);
		expect(planForwarding(false, undefined, "0")).toEqual([]);
	});
});

describe("Forwarding", () => {
	it.each(["0", "1"])(
		"gives back the previous value %s when the last route stops",
		async (previous) => {
			const sysctl = memorySysctl(previous);
			const record = memoryRecord();
			const forwarding = new Forwarding(sysctl, record);
			await forwarding.set(true);
			expect(sysctl.value).toBe("1");
			expect(record.saved).toBe(previous);
			await forwarding.set(true);
			await forwarding.set(false);
			expect(sysctl.value).toBe(previous);
			expect(record.saved).toBeUndefined();
			expect(sysctl.writes).toEqual(previous === "0" ? ["1", "0"] : []);
		},
	);

	it("a new agent after a crash gives back what the killed one recorded", async () => {
		const sysctl = memorySysctl("0");
		const record = memoryRecord();
		await new Forwarding(sysctl, record).set(true);
		// SIGKILL: the object is gone, the kernel value and the record stay.
		await new Forwarding(sysctl, record).restore();
		expect(sysctl.value).toBe("0");
		expect(record.saved).toBeUndefined();
	});

	// Any run of on/off requests, with crashes (the agent's memory lost, the
	// record and the kernel value kept) and other programs writing the
	// sysctl while the agent does not own it, ends with a restore giving the
	// machine its own last value; and while the agent serves, forwarding is on.
	it("always gives the machine its own value back (property)", async () => {
		const op = fc.oneof(
			fc.constant({ kind: "on" as const }),
			fc.constant({ kind: "off" as const }),
			fc.constant({ kind: "crash" as const }),
			fc.constantFrom("0", "1").map((v) => ({ kind: "other" as const, value: v })),
		);
		await fc.assert(
			fc.asyncProperty(
				fc.constantFrom("0", "1"),
				fc.array(op, { maxLength: 30 }),
				async (initial, ops) => {
					const sysctl = memorySysctl(initial);
					const record = memoryRecord();
					let agent = new Forwarding(sysctl, record);
					let machineValue = initial;
					for (const o of ops) {
						if (o.kind === "on") {
							await agent.set(true);
							expect(sysctl.value).toBe("1");
						} else if (o.kind === "off") {
							await agent.set(false);
							expect(sysctl.value).toBe(machineValue);
						} else if (o.kind === "crash") {
							agent = new Forwarding(sysctl, record);
						} else if (record.saved === undefined) {
							// Someone else sets the value while it is the machine's.
							sysctl.value = o.value;
							machineValue = o.value;
						}
					}
					await new Forwarding(sysctl, record).restore();
					expect(sysctl.value).toBe(machineValue);
					expect(record.saved).toBeUndefined();
				},
			),
		);
	});
});

describe("fileForwardingRecord", () => {
	let dir: string | undefined;
	afterEach(() => {
		if (dir) rmSync(dir, { recursive: true, force: true });
	});

	it("keeps the value in a 0600 file and removes it when cleared", () => {
		dir = mkdtempSync(join(tmpdir(), "starling-fwd-"));
		const record = fileForwardingRecord(dir);
		expect(record.load()).toBeUndefined();
		record.save("0");
		const path = join(dir, FORWARDING_RECORD_FILE);
		expect(statSync(path).mode & 0o777).toBe(0o600);
		expect(JSON.parse(readFileSync(path, "utf8"))).toEqual({
			key: "net.ipv4.ip_forward",
			previous: "0",
		});
		expect(fileForwardingRecord(dir).load()).toBe("0");
		record.clear();
		expect(record.load()).toBeUndefined();
		record.clear();
	});

	it("refuses a record it cannot read instead of forgetting the machine's value", () => {
		dir = mkdtempSync(join(tmpdir(), "starling-fwd-"));
		writeFileSync(
			join(dir, FORWARDING_RECORD_FILE),
			'{"key":"net.ipv4.ip_forward","previous":"x; rm"}',
		);
		expect(() => fileForwardingRecord(dir!).load()).toThrow(/does not hold/);
	});
});
