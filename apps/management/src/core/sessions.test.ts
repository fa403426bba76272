import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { peerFixture } from "../domain/fixtures.js";
import { deadInstances, peerWithSessions } from "./sessions.js";

const at = (s: number) => new Date(1_800_000_000_000 + s * 1000);

describe("deadInstances", () => {
	it("are the others whose heartbeat is older than the expiry; never itself", () => {
		const i = (id: string, s: number) => ({ id, startedAt: at(0), heartbeatAt: at(s) });
		const all = [i("self", 0), i("fresh", 10), i("edge", 5), i("old", 4)];
		expect(deadInstances(all, "self", at(20), 15_000).map((x) => x.id)).toEqual(["old"]);
	});
	it("property: dead iff other and heartbeat strictly before now - expiry", () => {
		fc.assert(
			fc.property(
				fc.array(fc.record({ id: fc.constantFrom("a", "b", "c", "self"), hb: fc.nat(100) })),
				fc.nat(100),
				fc.integer({ min: 1, max: 50 }),
				(rows, now, expiry) => {
					const instances = rows.map((r) => ({
						id: r.id,
						startedAt: at(0),
						heartbeatAt: at(r.hb),
					}));
					const dead = new Set(deadInstances(instances, "self", at(now), expiry * 1000));
					for (const x of instances) {
						expect(dead.has(x)).toBe(x.id !== "self" && x.heartbeatAt < at(now - expiry));
					}
				},
			),
		);
	});
});

describe("peerWithSessions", () => {
	const p = peerFixture({
		id: "p",
		accountId: "a",
		name: "web",
		ip: "100.64.0.1",
		wgPublicKey: "k",
	});
	it("connects with any session, disconnects with none, and leaves a disconnected peer alone", () => {
		expect(peerWithSessions(p, 1, at(1))).toEqual({ ...p, connected: true, lastSeen: at(1) });
		expect(peerWithSessions({ ...p, connected: true }, 0, at(2))).toEqual({
			...p,
			connected: false,
			lastSeen: at(2),
		});
		expect(peerWithSessions(p, 0, at(3))).toBeUndefined();
	});
});
