import { expect, it } from "vitest";
import type { Account } from "../../domain/types.js";
import type { Store } from "../store.js";
import { StoreReferenceError } from "../store.js";
import * as f from "./fixtures.js";

// The routing rows (routes, networks, resources, routers; store.ts,
// migration 6) as part of the conformance suite: called inside its
// describe, with the suite's fresh store and account seeding.

export interface RoutingContext {
	store(): Store;
	seedAccount(): Promise<{ acc: Account }>;
}

export function describeRoutingConformance(ctx: RoutingContext): void {
	it("routes round-trip with their group lists, list in creation order, update, delete; scoped by account", async () => {
		const store = ctx.store();
		const { acc } = await ctx.seedAccount();
		const other = await ctx.seedAccount();
		const p = f.peer(acc, 1);
		const first = f.route(acc.id, { peerId: p.id, groups: ["g2", "g1"], networkId: "z" });
		const second = f.route(acc.id, {
			peerGroups: ["g3"],
			accessControlGroups: ["g4"],
			network: "0.0.0.0/0",
			skipAutoApply: true,
			keepRoute: true,
			masquerade: false,
			networkId: "a",
		});
		await store.write(async (tx) => {
			await tx.insertPeer(p);
			await tx.insertRoute(first);
			await tx.insertRoute(second);
		});
		expect(await store.getRoute(acc.id, first.id)).toEqual(first);
		expect(await store.getRoute(acc.id, second.id)).toEqual(second);
		expect(await store.getRoute(other.acc.id, first.id)).toBeUndefined();
		expect((await store.listRoutes(acc.id)).map((r) => r.id)).toEqual([first.id, second.id]);
		expect(await store.listRoutes(other.acc.id)).toEqual([]);
		const changed = {
			...first,
			description: "d",
			networkId: "y",
			enabled: false,
			peerId: null,
			peerGroups: ["g5"],
			network: "198.18.11.0/24",
			metric: 9999,
			masquerade: false,
			groups: [],
			keepRoute: true,
			accessControlGroups: ["g6"],
			skipAutoApply: false,
		};
		expect(await store.write((tx) => tx.updateRoute({ ...changed, accountId: other.acc.id }))).toBe(
			false,
		);
		expect(await store.write((tx) => tx.updateRoute(changed))).toBe(true);
		expect(await store.getRoute(acc.id, first.id)).toEqual(changed);
		expect(await store.write((tx) => tx.deleteRoute(other.acc.id, first.id))).toBe(false);
		expect(await store.write((tx) => tx.deleteRoute(acc.id, first.id))).toBe(true);
		expect((await store.listRoutes(acc.id)).map((r) => r.id)).toEqual([second.id]);
	});

	it("networks with resources and routers round-trip, update, and go together on delete; scoped by account", async () => {
		const store = ctx.store();
		const { acc } = await ctx.seedAccount();
		const other = await ctx.seedAccount();
		const p = f.peer(acc, 1);
		const net = f.network(acc.id, { name: "office", description: "hq" });
		const net2 = f.network(acc.id, { name: "lab" });
		const host = f.networkResource(net, { groups: ["g1"] });
		const subnet = f.networkResource(net2, {
			address: "198.18.30.0/24",
			type: "subnet",
			prefix: "198.18.30.0/24",
			enabled: false,
		});
		const r1 = f.networkRouter(net, { peerId: p.id, metric: 10 });
		const r2 = f.networkRouter(net2, { peerGroups: ["g2"], masquerade: false });
		await store.write(async (tx) => {
			await tx.insertPeer(p);
			await tx.insertNetwork(net);
			await tx.insertNetwork(net2);
			await tx.insertNetworkResource(host);
			await tx.insertNetworkResource(subnet);
			await tx.insertNetworkRouter(r1);
			await tx.insertNetworkRouter(r2);
		});
		expect(await store.getNetwork(acc.id, net.id)).toEqual(net);
		expect(await store.getNetwork(other.acc.id, net.id)).toBeUndefined();
		expect((await store.listNetworks(acc.id)).map((n) => n.id)).toEqual([net.id, net2.id]);
		expect(await store.listNetworkResources(acc.id)).toEqual([host, subnet]);
		expect(await store.getNetworkResource(acc.id, subnet.id)).toEqual(subnet);
		expect(await store.getNetworkResource(other.acc.id, subnet.id)).toBeUndefined();
		expect(await store.listNetworkRouters(acc.id)).toEqual([r1, r2]);
		expect(await store.getNetworkRouter(acc.id, r2.id)).toEqual(r2);
		expect(await store.listNetworkResources(other.acc.id)).toEqual([]);

		const renamed = { ...net, name: "hq", description: "" };
		expect(await store.write((tx) => tx.updateNetwork(renamed))).toBe(true);
		expect(await store.getNetwork(acc.id, net.id)).toEqual(renamed);
		const hostChanged = {
			...host,
			name: "web",
			address: "198.18.20.6/32",
			prefix: "198.18.20.6/32",
			groups: [],
		};
		expect(await store.write((tx) => tx.updateNetworkResource(hostChanged))).toBe(true);
		expect(await store.getNetworkResource(acc.id, host.id)).toEqual(hostChanged);
		// Named in another network: not this row.
		expect(
			await store.write((tx) => tx.updateNetworkResource({ ...hostChanged, networkId: net2.id })),
		).toBe(false);
		const routerChanged = { ...r1, peerId: null, peerGroups: ["g9"], metric: 5, enabled: false };
		expect(await store.write((tx) => tx.updateNetworkRouter(routerChanged))).toBe(true);
		expect(await store.getNetworkRouter(acc.id, r1.id)).toEqual(routerChanged);

		await expect(
			store.write((tx) => tx.insertNetworkResource(f.networkResource(f.network(acc.id)))),
		).rejects.toThrow(StoreReferenceError);
		await expect(
			store.write((tx) => tx.insertNetworkRouter(f.networkRouter(f.network(acc.id)))),
		).rejects.toThrow(StoreReferenceError);

		expect(await store.write((tx) => tx.deleteNetwork(other.acc.id, net.id))).toBe(false);
		expect(await store.listNetworkResources(acc.id)).toHaveLength(2);
		expect(await store.write((tx) => tx.deleteNetwork(acc.id, net.id))).toBe(true);
		expect((await store.listNetworks(acc.id)).map((n) => n.id)).toEqual([net2.id]);
		expect((await store.listNetworkResources(acc.id)).map((r) => r.id)).toEqual([subnet.id]);
		expect((await store.listNetworkRouters(acc.id)).map((r) => r.id)).toEqual([r2.id]);
		expect(await store.write((tx) => tx.deleteNetworkResource(acc.id, subnet.id))).toBe(true);
		expect(await store.write((tx) => tx.deleteNetworkRouter(acc.id, r2.id))).toBe(true);
		expect(await store.write((tx) => tx.deleteNetworkRouter(acc.id, r2.id))).toBe(false);
	});

	it("every write to routes, networks, resources and routers moves the account revision, and no other's", async () => {
		const store = ctx.store();
		const { acc } = await ctx.seedAccount();
		const other = await ctx.seedAccount();
		let last = (await store.getAccountRevision(acc.id))!;
		const expectMove = async (what: string, change: () => Promise<unknown>) => {
			const otherBefore = await store.getAccountRevision(other.acc.id);
			await change();
			const now = (await store.getAccountRevision(acc.id))!;
			expect(now > last, what).toBe(true);
			expect(await store.getAccountRevision(other.acc.id), what).toBe(otherBefore);
			last = now;
		};
		const route = f.route(acc.id, { peerGroups: ["g"] });
		const net = f.network(acc.id);
		const res = f.networkResource(net);
		const router = f.networkRouter(net, { peerGroups: ["g"] });
		await expectMove("insert a route", () => store.write((tx) => tx.insertRoute(route)));
		await expectMove("update a route", () =>
			store.write((tx) => tx.updateRoute({ ...route, metric: 1 })),
		);
		await expectMove("delete a route", () => store.write((tx) => tx.deleteRoute(acc.id, route.id)));
		await expectMove("insert a network", () => store.write((tx) => tx.insertNetwork(net)));
		await expectMove("update a network", () =>
			store.write((tx) => tx.updateNetwork({ ...net, name: "x" })),
		);
		await expectMove("insert a resource", () => store.write((tx) => tx.insertNetworkResource(res)));
		await expectMove("update a resource", () =>
			store.write((tx) => tx.updateNetworkResource({ ...res, enabled: false })),
		);
		await expectMove("delete a resource", () =>
			store.write((tx) => tx.deleteNetworkResource(acc.id, res.id)),
		);
		await expectMove("insert a router", () => store.write((tx) => tx.insertNetworkRouter(router)));
		await expectMove("update a router", () =>
			store.write((tx) => tx.updateNetworkRouter({ ...router, metric: 2 })),
		);
		await expectMove("delete a router", () =>
			store.write((tx) => tx.deleteNetworkRouter(acc.id, router.id)),
		);
		await store.write((tx) => tx.insertNetworkResource(f.networkResource(net)));
		last = (await store.getAccountRevision(acc.id))!;
		await expectMove("delete a network with a resource", () =>
			store.write((tx) => tx.deleteNetwork(acc.id, net.id)),
		);
	});
}
