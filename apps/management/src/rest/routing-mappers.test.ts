import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Group, NetworkResource, NetworkRouter, Policy } from "../domain/types.js";
import { networkJson, routeJson, routerJson } from "./routing-mappers.js";

const ids = ["a", "b", "c", "d"];
const id = fc.constantFrom(...ids);
const group = (gid: string, peerIds: string[]) => ({ id: gid, peerIds }) as unknown as Group;

describe("networkJson", () => {
	it("counts each routing peer once and names the policies reaching a resource group (model)", () => {
		const router = fc.record({
			networkId: fc.constantFrom("n", "other"),
			peerId: fc.option(id, { nil: null }),
			peerGroups: fc.array(fc.constantFrom("g1", "g2"), { maxLength: 2 }),
		});
		const resource = fc.record({
			networkId: fc.constantFrom("n", "other"),
			groups: fc.array(fc.constantFrom("g1", "g2", "g3"), { maxLength: 2 }),
		});
		const policy = fc.array(fc.constantFrom("g1", "g2", "g3"), { maxLength: 2 });
		fc.assert(
			fc.property(
				fc.array(router, { maxLength: 4 }),
				fc.array(resource, { maxLength: 4 }),
				fc.array(policy, { maxLength: 3 }),
				fc.array(id, { maxLength: 3 }),
				fc.array(id, { maxLength: 3 }),
				(rs, res, pols, g1, g2) => {
					const routers = rs.map((r, i) => ({ ...r, id: `r${i}` }) as NetworkRouter);
					const resources = res.map((r, i) => ({ ...r, id: `s${i}` }) as NetworkResource);
					const policies = pols.map(
						(destinations, i) => ({ id: `p${i}`, rules: [{ destinations }] }) as unknown as Policy,
					);
					const groups = new Map([
						["g1", group("g1", g1)],
						["g2", group("g2", g2)],
					]);
					const json = networkJson(
						{ id: "n", accountId: "x", name: "n", description: "" },
						{ networkResources: resources, networkRouters: routers },
						policies,
						groups,
					);
					const mine = routers.filter((r) => r.networkId === "n");
					const peers = new Set<string>();
					for (const r of mine) {
						if (r.peerId) peers.add(r.peerId);
						for (const g of r.peerGroups) for (const p of groups.get(g)!.peerIds) peers.add(p);
					}
					expect(json.routing_peers_count).toBe(peers.size);
					expect(json.routers).toEqual(mine.map((r) => r.id));
					const mineRes = resources.filter((r) => r.networkId === "n");
					expect(json.resources).toEqual(mineRes.map((r) => r.id));
					const resGroups = new Set(mineRes.flatMap((r) => r.groups));
					expect(json.policies).toEqual(
						policies
							.filter((p) => p.rules.some((r) => r.destinations.some((g) => resGroups.has(g))))
							.map((p) => p.id),
					);
				},
			),
		);
	});
});

describe("peer or peer_groups in answers", () => {
	it("gives the one in use and leaves the other out", () => {
		const r = {
			id: "r",
			accountId: "a",
			networkId: "n",
			metric: 1,
			masquerade: true,
			enabled: true,
		};
		expect(routerJson({ ...r, peerId: "p", peerGroups: [] })).toEqual({
			id: "r",
			peer: "p",
			metric: 1,
			masquerade: true,
			enabled: true,
		});
		expect(routerJson({ ...r, peerId: null, peerGroups: ["g"] })).not.toHaveProperty("peer");
		const route = routeJson({
			id: "x",
			accountId: "a",
			description: "",
			networkId: "n",
			enabled: true,
			peerId: null,
			peerGroups: ["g"],
			network: "0.0.0.0/0",
			metric: 1,
			masquerade: true,
			groups: ["g"],
			keepRoute: false,
			accessControlGroups: [],
			skipAutoApply: true,
		});
		expect(route).toMatchObject({
			network_type: "IPv4",
			peer_groups: ["g"],
			skip_auto_apply: true,
		});
		expect(route).not.toHaveProperty("peer");
	});
});
