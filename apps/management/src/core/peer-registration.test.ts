import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { accountFixture, setupKeyFixture } from "../domain/fixtures.js";
import type { Group, Peer, SetupKey } from "../domain/types.js";
import { cidrContainsIp, IpamError, ipToInt, parseCidr } from "./ipam.js";
import { labelForRename, type NewPeer, planRegistration } from "./peer-registration.js";

const now = new Date(Date.UTC(2026, 0, 1));
const account = accountFixture({
	network: "100.64.0.0/28",
	dnsDomain: "s.internal",
	createdAt: now,
	settings: { peerLoginExpirationEnabled: false, peerLoginExpirationSeconds: 3600 },
});
const key = (over: Partial<SetupKey> = {}): SetupKey =>
	setupKeyFixture({ name: "fleet", createdAt: now, updatedAt: now, ...over });
const groups: Group[] = [
	{ id: "all", accountId: "acc", name: "All", issued: "all", peerIds: [] },
	{ id: "web", accountId: "acc", name: "web", issued: "api", peerIds: [] },
	{ id: "db", accountId: "acc", name: "db", issued: "api", peerIds: [] },
];
const input = (name: string, wg = `wg-${name}`): NewPeer => ({
	wgPublicKey: wg,
	name,
	system: {
		hostname: name,
		os: "linux",
		osVersion: "12",
		kernelVersion: "6.1",
		agentVersion: "t",
		connectionIp: "",
	},
	now,
});
const first = () => 0;

describe("planRegistration", () => {
	it("makes the peer, counts the key's use, joins All and the key's existing auto-groups, audits", () => {
		const plan = planRegistration(
			{ key: key({ autoGroups: ["web", "gone"], ephemeral: true }), account, peers: [], groups },
			input("Web Server.local"),
			"p1",
			first,
		);
		if (!plan.ok) throw new Error(plan.reason);
		expect(plan.peer).toMatchObject({
			id: "p1",
			accountId: "acc",
			name: "Web Server.local",
			dnsLabel: "web-server",
			ip: "100.64.0.1",
			setupKeyId: "k",
			ephemeral: true,
			connected: false,
			createdAt: now,
		});
		expect(plan.setupKey).toMatchObject({ usedTimes: 1, lastUsed: now });
		expect(plan.groupIds).toEqual(["all", "web"]);
		expect(plan.event).toMatchObject({
			accountId: "acc",
			activityCode: "peer.setupkey.add",
			initiatorId: "k",
			initiatorName: "fleet",
			targetId: "p1",
			meta: {
				name: "Web Server.local",
				ip: "100.64.0.1",
				dns_label: "web-server",
				setup_key: "fleet",
			},
		});
	});

	it("refuses a revoked, expired or used-up key with the reason the agent shows", () => {
		const state = (k: SetupKey) => ({ key: k, account, peers: [], groups });
		const refusal = (k: SetupKey) => {
			const plan = planRegistration(state(k), input("x"), "p", first);
			return plan.ok ? "registered" : plan.reason;
		};
		expect(refusal(key({ revoked: true }))).toBe("setup key has been revoked");
		expect(refusal(key({ expiresAt: now }))).toMatch(/expired/);
		expect(refusal(key({ type: "one-off", usageLimit: 1, usedTimes: 1 }))).toBe(
			"one-off setup key has already been used",
		);
		expect(refusal(key({ usageLimit: 3, usedTimes: 3 }))).toMatch(/usage limit of 3/);
	});

	it("registrations one after another get distinct addresses in the network and distinct labels, until it is full", () => {
		const network = parseCidr(account.network);
		fc.assert(
			fc.property(
				fc.array(fc.constantFrom("web", "Web", "db", "web-1", "x.y", "--"), {
					minLength: 1,
					maxLength: 20,
				}),
				fc.infiniteStream(fc.nat()),
				(names, randoms) => {
					const peers: Peer[] = [];
					const random = (max: number) => randoms.next().value % max;
					for (const [i, name] of names.entries()) {
						if (peers.length === 14) {
							// A /28 has 14 host addresses.
							expect(() =>
								planRegistration(
									{ key: key(), account, peers, groups },
									input(name, `k${i}`),
									`p${i}`,
									random,
								),
							).toThrow(IpamError);
							return;
						}
						const plan = planRegistration(
							{ key: key(), account, peers, groups },
							input(name, `k${i}`),
							`p${i}`,
							random,
						);
						if (!plan.ok) throw new Error(plan.reason);
						peers.push(plan.peer);
					}
					const ips = peers.map((p) => ipToInt(p.ip));
					expect(new Set(ips).size).toBe(peers.length);
					for (const ip of ips) {
						expect(cidrContainsIp(network, ip)).toBe(true);
						expect(ip).not.toBe(network.base);
						expect(ip).not.toBe(network.base + 15);
					}
					expect(new Set(peers.map((p) => p.dnsLabel)).size).toBe(peers.length);
				},
			),
		);
	});
});

describe("labelForRename", () => {
	const peer = (id: string, name: string, dnsLabel: string) => ({ id, name, dnsLabel }) as Peer;
	const peers = [peer("1", "web", "web"), peer("2", "db", "db"), peer("3", "x", "web-1")];

	it("keeps the label when the name does not change", () => {
		expect(labelForRename(peers[0]!, "web", peers)).toBe("web");
	});

	it("derives a label from the new name, unique among the other peers", () => {
		expect(labelForRename(peers[1]!, "Web", peers)).toBe("web-2");
		// Its own current label does not count as taken.
		expect(labelForRename(peers[0]!, "WEB", peers)).toBe("web");
		expect(labelForRename(peers[1]!, "mail.example.com", peers)).toBe("mail");
	});

	it("never returns a label another peer has (property)", () => {
		fc.assert(
			fc.property(fc.string({ maxLength: 12 }), fc.constantFrom("1", "2", "3"), (name, id) => {
				const me = peers.find((p) => p.id === id)!;
				const label = labelForRename(me, name, peers);
				const others = peers.filter((p) => p.id !== id).map((p) => p.dnsLabel);
				expect(others).not.toContain(label);
			}),
		);
	});
});
