// The NAT grid: one agent behind each kind of router (and one on the
// "internet" itself), all in one network, so every pair of kinds is one
// cell. Every cell must ping; where the facts of NAT traversal are clear the
// path type must match (P2P or relayed: expectedPath in packages/lab/src/
// nat-grid.ts). The grid is printed as a table.
import { writeFileSync } from "node:fs";
import {
	expectedPath,
	Lab,
	labSkipReason,
	type NatKind,
	NETWORK_KINDS,
	type NetworkKind,
	type Router,
} from "@starling/lab";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AgentHost, ControlPlane, waitFor } from "./fixture.js";

describe.skipIf(labSkipReason)("NAT grid", () => {
	let lab: Lab;
	let ctl: ControlPlane;
	const agents = new Map<NetworkKind, AgentHost>();
	/** A second host on the double NAT's home LAN, beside "double". */
	let neighbour: AgentHost;
	let homeLanPrefix = "";

	beforeAll(async () => {
		lab = await Lab.create("natg");
		const internet = await lab.lan("inet", "198.18.200.0/24");
		ctl = new ControlPlane(await lab.host("ctl", { lan: internet }), { relay: true, stun: true });
		await ctl.start();
		let n = 201;
		const behind = async (kind: NetworkKind, nat: NatKind, wanGateway?: Router) => {
			const lan = await lab.lan(`l${n}`, `198.18.${n++}.0/24`);
			const router = await lab.router(`r-${kind}`, {
				wan: wanGateway ? wanGateway.lan : internet,
				lan,
				nat,
				wanGateway,
			});
			return lab.host(kind, { lan, gateway: router });
		};
		agents.set("public", new AgentHost(await lab.host("public", { lan: internet })));
		agents.set("eim", new AgentHost(await behind("eim", "eim")));
		agents.set("masq", new AgentHost(await behind("masq", "masquerade-only")));
		agents.set("symmetric", new AgentHost(await behind("symmetric", "symmetric")));
		// A home router (EIM) behind a carrier-grade NAT (EIM).
		const isp = await lab.lan(`l${n}`, `198.18.${n++}.0/24`);
		const cgnat = await lab.router("r-cgnat", { wan: internet, lan: isp, nat: "eim" });
		const home = await lab.lan(`l${n}`, `198.18.${n++}.0/24`);
		const homeRouter = await lab.router("r-double", {
			wan: isp,
			lan: home,
			nat: "eim",
			wanGateway: cgnat,
		});
		agents.set(
			"double",
			new AgentHost(await lab.host("double", { lan: home, gateway: homeRouter })),
		);
		homeLanPrefix = `198.18.${n - 1}.`;
		neighbour = new AgentHost(await lab.host("neighb", { lan: home, gateway: homeRouter }));
		agents.set("udp-blocked", new AgentHost(await behind("udp-blocked", "udp-blocked")));
		for (const a of [...agents.values(), neighbour]) await a.startDaemon();
	}, 120_000);

	afterEach((context) => {
		if (context.task.result?.state === "fail")
			for (const a of agents.values()) console.error(a.logs(25));
	});

	afterAll(async () => {
		// STARLING_TEST_LOG_DIR=dir keeps every agent's log for a look afterwards.
		if (process.env.STARLING_TEST_LOG_DIR)
			for (const a of [...agents.values(), neighbour])
				writeFileSync(
					`${process.env.STARLING_TEST_LOG_DIR}/${a.name}.log`,
					a.daemon?.output() ?? "",
				);
		await lab?.destroy();
	}, 60_000);

	it("every pair of NAT kinds can ping, over the expected path", async () => {
		const key = await ctl.createSetupKey("grid");
		for (const a of agents.values()) {
			const r = await a.starling(["up", "--management-url", ctl.url, "--setup-key", key]);
			expect(r.exitCode, `${a.name}: ${r.stderr}`).toBe(0);
		}
		const upAt = Date.now();
		const ips = new Map<NetworkKind, string>();
		for (const [kind, a] of agents) ips.set(kind, await a.overlayIp());

		const cells: {
			x: NetworkKind;
			y: NetworkKind;
			firstPingS: number;
			path: string;
			candidates: string;
		}[] = [];
		const pairs: [NetworkKind, NetworkKind][] = [];
		for (const [i, x] of NETWORK_KINDS.entries())
			for (const y of NETWORK_KINDS.slice(i + 1)) pairs.push([x, y]);
		await Promise.all(
			pairs.map(async ([x, y]) => {
				const from = agents.get(x)!;
				await waitFor(
					`${x} pings ${y}`,
					async () =>
						(await from.host.ping(ips.get(y)!, { count: 1, timeoutSeconds: 1 })) ? true : undefined,
					60_000,
				);
				cells.push({ x, y, firstPingS: (Date.now() - upAt) / 1000, path: "", candidates: "" });
			}),
		);
		// Let ICE finish (or give up, ~8 s per attempt) everywhere, then read each cell's path.
		await waitFor(
			"expected P2P cells to be direct",
			async () => {
				for (const cell of cells) {
					const peer = (await agents.get(cell.x)!.status()).peers?.find(
						(p) => p.overlay_ip === ips.get(cell.y),
					);
					cell.path = peer?.path_type ?? "";
					cell.candidates =
						peer?.path_type === "p2p"
							? `${peer.local_endpoint} → ${peer.remote_endpoint}`
							: (peer?.reason ?? "");
				}
				return cells.every((c) => expectedPath(c.x, c.y) !== "p2p" || c.path === "p2p")
					? true
					: undefined;
			},
			60_000,
		).catch(() => undefined);

		const table = [
			"| A | B | path | expected | first ping (s after up) | detail |",
			"|---|---|---|---|---|---|",
			...cells
				.sort(
					(a, b) =>
						NETWORK_KINDS.indexOf(a.x) - NETWORK_KINDS.indexOf(b.x) ||
						NETWORK_KINDS.indexOf(a.y) - NETWORK_KINDS.indexOf(b.y),
				)
				.map(
					(c) =>
						`| ${c.x} | ${c.y} | ${c.path || "-"} | ${expectedPath(c.x, c.y)} | ${c.firstPingS.toFixed(1)} | ${c.candidates} |`,
				),
		].join("\n");
		console.log(`NAT grid:\n${table}`);
		for (const cell of cells) {
			expect(["p2p", "relayed"], `${cell.x}-${cell.y}`).toContain(cell.path);
			const want = expectedPath(cell.x, cell.y);
			if (want !== "either") expect(cell.path, `${cell.x}-${cell.y}`).toBe(want);
		}
	}, 240_000);

	it("two agents on the same LAN behind one NAT connect over host candidates", async () => {
		const key = await ctl.createSetupKey("neighbours");
		const up = await neighbour.starling(["up", "--management-url", ctl.url, "--setup-key", key]);
		expect(up.exitCode, up.stderr).toBe(0);
		// "double" is up since the grid test (run alone, it joins here).
		const double = agents.get("double")!;
		if ((await double.status()).overlay_address === "") {
			const r = await double.starling(["up", "--management-url", ctl.url, "--setup-key", key]);
			expect(r.exitCode, r.stderr).toBe(0);
		}
		const doubleIp = await double.overlayIp();
		const peer = await waitFor(
			"neighbour's direct path to double",
			async () => {
				const p = (await neighbour.status()).peers?.find((x) => x.overlay_ip === doubleIp);
				return p?.path_type === "p2p" ? p : undefined;
			},
			45_000,
		);
		// Both ends of the path are addresses on the home LAN itself: no NAT in between.
		expect(peer.remote_endpoint.startsWith(homeLanPrefix), peer.remote_endpoint).toBe(true);
		expect(peer.local_endpoint.startsWith(homeLanPrefix), peer.local_endpoint).toBe(true);
		// "prflx" when the peer's check arrives before its candidate did: the same LAN address.
		expect(["host", "prflx"]).toContain(peer.remote_candidate_type);
		expect(await neighbour.host.ping(doubleIp, { count: 1, timeoutSeconds: 2 })).toBeTruthy();
	}, 90_000);
});
