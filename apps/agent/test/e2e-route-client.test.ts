// The agent as a route client, in one lab (bench/src/lib-route-lab.ts draws
// it): through management's REST API, C (alone in the receiving group) gets
// the office network behind R1 (metric 10) and R2 (metric 20), and E as a
// skip_auto_apply exit node. Real control plane, wireguard-go, ICE and
// kernel routing; R1, R2 and E forward and masquerade with their served
// routes only. The nested suite checks the routing peer's side through the
// REST API (masquerade on and off, R1's table and ip_forward, access control
// groups, Networks), with R1 serving only what each check creates.
// Bounds are generous: `pnpm bench route-failover` measures.
import { type Host, Lab, labSkipReason } from "@starling/lab";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
	allowedIps,
	apiOk,
	CLI,
	cutUplink,
	firstReplyVia,
	kernelState,
	OFFICE,
	parseReplies,
	peerIdOf,
	type RouteLab,
	restoreUplink,
	setUpRouteLab,
	spawnRouteDaemon,
	startEcho,
	tcpProbe,
	waitDirect,
} from "../../../bench/src/lib-route-lab.js";
import { waitFor } from "./fixture.js";

interface RouteJson {
	network_id: string;
	network: string;
	router: string;
	router_key: string;
	installed: boolean;
	reason: string;
}

describe.skipIf(labSkipReason)("route client (lab)", () => {
	let lab: Lab;
	let rl: RouteLab;

	const routes = async (): Promise<RouteJson[]> => {
		const r = await rl.c.cli(["routes", "--json"]);
		expect(r.exitCode, r.stderr).toBe(0);
		return (JSON.parse(r.stdout) as { routes: RouteJson[] }).routes;
	};
	const office = async () => (await routes()).find((r) => r.network_id === "office");

	beforeAll(async () => {
		lab = await Lab.create("rclirt");
		rl = await setUpRouteLab(lab);
		await waitDirect(rl, ["r1", "r2", "e"]);
	}, 180_000);

	afterEach(async (context) => {
		if (context.task.result?.state !== "fail") return;
		console.error(lab.logs());
	});

	afterAll(async () => {
		await lab?.destroy();
	}, 60_000);

	it("installs the office route through R1 only on the peer that receives it", async () => {
		await waitFor(
			"office via r1",
			async () => ((await office())?.router_key === rl.keys.r1 ? true : undefined),
			20_000,
		);
		const o = (await office())!;
		expect(o.installed).toBe(true);
		expect(o.reason).toMatch(/metric 10/);
		const c = await kernelState(rl.c.host);
		expect(c.routes).toContain(`${OFFICE} dev starling0`);
		// skip_auto_apply: the exit node is offered, not applied.
		expect(c.routes).not.toContain("default");
		expect(c.rules).toMatch(/21331:\s+from all lookup main suppress_prefixlength 0/);
		expect(c.rules).toMatch(/21332:\s+from all lookup 21332/);
		const wg = await allowedIps(rl.c.host);
		expect(wg.get(rl.keys.r1)).toContain(OFFICE);
		expect(wg.get(rl.keys.r2)).not.toContain(OFFICE);
		expect(wg.get(rl.keys.e)).not.toContain("0.0.0.0/0");
		// The other peers receive no routes: nothing installed there.
		for (const other of [rl.r1, rl.r2, rl.e]) {
			expect((await kernelState(other.host)).routes).toBe("");
			for (const ips of (await allowedIps(other.host)).values()) expect(ips).not.toContain(OFFICE);
		}
		expect(await rl.c.host.ping(rl.h.address, { count: 1, timeoutSeconds: 3 })).toBe(true);
		// The same in `status --json` (field `routes`) and in the text of `starling routes`.
		const status = (await rl.c.status()) as unknown as { routes: RouteJson[] };
		expect(status.routes.find((r) => r.network_id === "office")?.router_key).toBe(rl.keys.r1);
		const text = await rl.c.cli(["routes"]);
		expect(text.stdout).toContain(` ${OFFICE} (network 'office'): office LAN`);
		expect(text.stdout).toMatch(/Why: (best reachable|in use): metric 10, direct/);
		expect(text.stdout).toMatch(/offered, not applied until selected/);
	}, 60_000);

	it("cutting R1's uplink moves traffic to R2; R1's return moves it back once", async () => {
		const r1Lan = rl.r1Router.lanAddress;
		const r2Lan = rl.r2Router.lanAddress;
		const stream = startEcho(rl, rl.h.address, 50);
		try {
			await firstReplyVia(stream, r1Lan, 0, 20_000);
			const cutAt = Date.now();
			await cutUplink(rl.r1Router);
			const viaR2 = await firstReplyVia(stream, r2Lan, cutAt, 20_000);
			const failoverMs = viaR2.receivedAt - cutAt;
			console.log(`failover: first reply through R2 ${failoverMs} ms after the cut`);
			expect((await office())?.router_key).toBe(rl.keys.r2);
			expect((await allowedIps(rl.c.host)).get(rl.keys.r2)).toContain(OFFICE);
			expect((await allowedIps(rl.c.host)).get(rl.keys.r1)).not.toContain(OFFICE);

			const backAt = Date.now();
			await restoreUplink(rl.r1Router);
			const viaR1 = await firstReplyVia(stream, r1Lan, backAt, 150_000);
			console.log(
				`move back: first reply through R1 ${viaR1.receivedAt - backAt} ms after the uplink returned`,
			);
			// Stays on R1: watch 10 s more.
			await new Promise((r) => setTimeout(r, 10_000));
			const after = parseReplies(stream.output()).filter((r) => r.sentAt >= viaR1.sentAt);
			expect(after.length).toBeGreaterThan(100);
			expect(after.every((r) => r.seenAs === r1Lan)).toBe(true);
			// The whole run: R1, then R2, then R1 (each switch once).
			const switches = parseReplies(stream.output())
				.sort((a, b) => a.seq - b.seq)
				.map((r) => r.seenAs)
				.filter((seen, i, all) => i === 0 || all[i - 1] !== seen);
			expect(switches).toEqual([r1Lan, r2Lan, r1Lan]);
		} finally {
			await stream.kill();
			await restoreUplink(rl.r1Router);
		}
	}, 240_000);

	// Served routes through management's REST API. R1's office route (and
	// R2's) are set aside first, so that R1 serves only what each check creates
	// and C reaches H through nothing else; they come back at the end.
	describe("served routes and networks from management's REST API", () => {
		const officeRoutes: Record<string, unknown>[] = [];
		let hRoute: string;
		const created: string[] = [];

		/** R1's forwarding state: its `inet starling-routing` table and ip_forward. */
		const r1State = async () => {
			const table = await rl.r1Router.exec("nft", ["list", "table", "inet", "starling-routing"], {
				allowFailure: true,
			});
			const ipForward = await rl.r1Router.exec("cat", ["/proc/sys/net/ipv4/ip_forward"]);
			return {
				table: table.exitCode === 0 ? table.stdout : "",
				ipForward: ipForward.stdout.trim(),
			};
		};
		/** The packets counted by R1's drop of what the overlay sends that no rule allows. */
		const r1Dropped = async () => {
			const chain = await rl.r1Router.exec("nft", [
				"list",
				"chain",
				"inet",
				"starling-routing",
				"from-overlay",
			]);
			return Number(/counter packets (\d+) bytes \d+ drop/.exec(chain.stdout)?.[1] ?? Number.NaN);
		};
		const hasHRoute = async (a: { host: Host }) =>
			(await kernelState(a.host)).routes
				.split("\n")
				.some((l) => l.startsWith(`${rl.h.address} dev`));
		const waitHRoute = (a: { host: Host }, present: boolean, timeoutMs = 20_000) =>
			waitFor(
				`${a.host.name}: route to H ${present ? "present" : "gone"}`,
				async () => ((await hasHRoute(a)) === present ? true : undefined),
				timeoutMs,
				50,
			);
		const group = async (name: string, peers: string[]) =>
			(await apiOk(rl.ctl, "POST", "/api/groups", { name, peers })).id;
		const routeBody = (over: Record<string, unknown>) => ({
			description: "H alone",
			network_id: "h-host",
			enabled: true,
			network: hRoute,
			metric: 10,
			masquerade: true,
			groups: [rl.clientsGroup],
			keep_route: false,
			skip_auto_apply: false,
			...over,
		});

		beforeAll(async () => {
			hRoute = `${rl.h.address}/32`;
			const all = await apiOk<Record<string, unknown>[]>(rl.ctl, "GET", "/api/routes");
			for (const r of all.filter((r) => r.network_id === "office")) {
				officeRoutes.push(r);
				await apiOk(rl.ctl, "DELETE", `/api/routes/${r.id}`);
			}
			expect(officeRoutes).toHaveLength(2);
			await waitFor(
				"office routes gone from C and R1's table gone",
				async () =>
					!(await kernelState(rl.c.host)).routes.includes(OFFICE) && (await r1State()).table === ""
						? true
						: undefined,
				20_000,
			);
			expect(await rl.c.host.ping(rl.h.address, { count: 1, timeoutSeconds: 2 })).toBe(false);
		}, 60_000);

		afterEach(async () => {
			// What a failed check left, so that the next starts clean: policies,
			// routes and networks before the groups they use.
			const order = (p: string) => (p.startsWith("/api/groups/") ? 1 : 0);
			for (const path of created.reverse().sort((a, b) => order(a) - order(b)))
				await rl.ctl.api("DELETE", path);
			created.length = 0;
		});

		afterAll(async () => {
			await rl.r1Router.exec("sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"]);
			for (const r of officeRoutes) {
				const { id: _id, network_type: _type, ...body } = r;
				await apiOk(rl.ctl, "POST", "/api/routes", body);
			}
		}, 60_000);

		it("masquerade: C reaches H through R1, H sees R1; R1 forwards only while it serves; DELETE gives ip_forward back; then PUT masquerade false: H sees C", async () => {
			// The machine's own value: R1 did not forward before it served a route.
			await rl.r1Router.exec("sysctl", ["-q", "-w", "net.ipv4.ip_forward=0"]);
			expect(await r1State()).toEqual({ table: "", ipForward: "0" });
			const r1Id = await peerIdOf(rl.ctl, rl.r1);
			const route = await apiOk(rl.ctl, "POST", "/api/routes", routeBody({ peer: r1Id }));
			created.push(`/api/routes/${route.id}`);
			await waitHRoute(rl.c, true);
			await waitFor("R1 serving", async () => ((await r1State()).table ? true : undefined), 10_000);
			const on = await r1State();
			expect(on.ipForward).toBe("1");
			expect(on.table).toMatch(/masquerade/);
			expect(await rl.c.host.ping(rl.h.address, { count: 1, timeoutSeconds: 3 })).toBe(true);
			expect(await tcpProbe(rl.c.host, rl.h.address, 80)).toBe(`reply ${rl.r1Router.lanAddress}`);

			const cIp = await rl.c.overlayIp();
			await apiOk(
				rl.ctl,
				"PUT",
				`/api/routes/${route.id}`,
				routeBody({ peer: r1Id, masquerade: false }),
			);
			await waitFor(
				"R1's masquerade gone",
				async () => (!(await r1State()).table.includes("masquerade") ? true : undefined),
				10_000,
			);
			expect(await tcpProbe(rl.c.host, rl.h.address, 80)).toBe(`reply ${cIp}`);
			expect(await rl.c.host.ping(rl.h.address, { count: 1, timeoutSeconds: 3 })).toBe(true);

			await apiOk(rl.ctl, "DELETE", `/api/routes/${route.id}`);
			created.pop();
			await waitFor(
				"R1's table gone",
				async () => ((await r1State()).table === "" ? true : undefined),
				10_000,
			);
			expect((await r1State()).ipForward).toBe("0");
			await waitHRoute(rl.c, false);
		}, 90_000);

		it("access_control_groups with a TCP/80 policy: 80 from C passes, 22 is dropped at R1, a receiver outside the sources gets nothing through", async () => {
			const [r1Id, eId] = await Promise.all([peerIdOf(rl.ctl, rl.r1), peerIdOf(rl.ctl, rl.e)]);
			// E receives the route too (so it has the kernel route and R1 in its allowed IPs) but is no source of the policy.
			const outsiders = await group("acl-outsiders", [eId]);
			created.push(`/api/groups/${outsiders}`);
			const acg = await group("acl-h", []);
			created.push(`/api/groups/${acg}`);
			const policy = await apiOk(rl.ctl, "POST", "/api/policies", {
				name: "web to H",
				enabled: true,
				rules: [
					{
						name: "tcp 80",
						enabled: true,
						action: "accept",
						bidirectional: false,
						protocol: "tcp",
						ports: ["80"],
						sources: [rl.clientsGroup],
						destinations: [acg],
					},
				],
			});
			created.push(`/api/policies/${policy.id}`);
			const route = await apiOk(
				rl.ctl,
				"POST",
				"/api/routes",
				routeBody({
					peer: r1Id,
					groups: [rl.clientsGroup, outsiders],
					access_control_groups: [acg],
				}),
			);
			created.push(`/api/routes/${route.id}`);
			await waitHRoute(rl.c, true);
			await waitHRoute(rl.e, true);
			expect((await allowedIps(rl.e.host)).get(rl.keys.r1)).toContain(rl.h.address);
			await waitFor("R1 serving", async () => ((await r1State()).table ? true : undefined), 10_000);

			expect(await tcpProbe(rl.c.host, rl.h.address, 80)).toBe(`reply ${rl.r1Router.lanAddress}`);
			const before22 = await r1Dropped();
			expect(await tcpProbe(rl.c.host, rl.h.address, 22, 1_500)).toBe("timeout");
			const after22 = await r1Dropped();
			expect(after22).toBeGreaterThan(before22);
			expect(await rl.c.host.ping(rl.h.address, { count: 1, timeoutSeconds: 1 })).toBe(false);
			// E sends through R1 (the counter moves) and gets no answer.
			expect(await tcpProbe(rl.e.host, rl.h.address, 80, 1_500)).toBe("timeout");
			expect(await r1Dropped()).toBeGreaterThan(after22);

			for (const path of [`/api/routes/${route.id}`, `/api/policies/${policy.id}`])
				await apiOk(rl.ctl, "DELETE", path);
			created.splice(created.length - 2, 2);
			await waitHRoute(rl.c, false);
			await waitHRoute(rl.e, false);
		}, 90_000);

		it("networks: resource + router + policy give C the route; deleting the policy withdraws it within 2 s; an uncovered resource gets no route", async () => {
			const r1Id = await peerIdOf(rl.ctl, rl.r1);
			const net = await apiOk(rl.ctl, "POST", "/api/networks", { name: "lab-office" });
			created.push(`/api/networks/${net.id}`);
			const resGroup = await group("res-h", []);
			created.push(`/api/groups/${resGroup}`);
			const uncoveredGroup = await group("res-uncovered", []);
			created.push(`/api/groups/${uncoveredGroup}`);
			await apiOk(rl.ctl, "POST", `/api/networks/${net.id}/resources`, {
				name: "H",
				address: rl.h.address,
				enabled: true,
				groups: [resGroup],
			});
			// X's address: a resource of the same network no policy covers.
			await apiOk(rl.ctl, "POST", `/api/networks/${net.id}/resources`, {
				name: "uncovered",
				address: rl.x.address,
				enabled: true,
				groups: [uncoveredGroup],
			});
			await apiOk(rl.ctl, "POST", `/api/networks/${net.id}/routers`, {
				peer: r1Id,
				metric: 10,
				masquerade: true,
				enabled: true,
			});
			const policy = await apiOk(rl.ctl, "POST", "/api/policies", {
				name: "C to H",
				enabled: true,
				rules: [
					{
						name: "all",
						enabled: true,
						action: "accept",
						bidirectional: false,
						protocol: "all",
						sources: [rl.clientsGroup],
						destinations: [resGroup],
					},
				],
			});
			created.push(`/api/policies/${policy.id}`);
			await waitHRoute(rl.c, true);
			const r = (await routes()).find((x) => x.network === hRoute);
			expect(r?.network_id).toBe(net.id);
			expect(r?.router_key).toBe(rl.keys.r1);
			expect(r?.installed).toBe(true);
			expect(await tcpProbe(rl.c.host, rl.h.address, 80)).toBe(`reply ${rl.r1Router.lanAddress}`);
			expect(await rl.c.host.ping(rl.h.address, { count: 1, timeoutSeconds: 3 })).toBe(true);
			// The uncovered resource: no kernel route, not in any allowed IPs, not offered.
			expect((await kernelState(rl.c.host)).routes).not.toContain(rl.x.address);
			for (const ips of (await allowedIps(rl.c.host)).values())
				expect(ips).not.toContain(rl.x.address);
			expect((await routes()).some((x) => x.network.startsWith(`${rl.x.address}/`))).toBe(false);
			expect(await tcpProbe(rl.c.host, rl.x.address, 80, 1_000)).not.toMatch(/^reply/);

			const deletedAt = Date.now();
			await apiOk(rl.ctl, "DELETE", `/api/policies/${policy.id}`);
			created.pop();
			await waitHRoute(rl.c, false, 5_000);
			const withdrawMs = Date.now() - deletedAt;
			console.log(
				`networks: C's kernel route withdrawn ${withdrawMs} ms after DELETE of the policy`,
			);
			expect(withdrawMs).toBeLessThanOrEqual(2_000);
			expect(await tcpProbe(rl.c.host, rl.h.address, 80, 1_000)).not.toMatch(/^reply/);
		}, 90_000);
	});

	it("exit node: selected by name, default route through E, control plane and peers stay on the underlay", async () => {
		const bad = await rl.c.cli(["exit-node", "use", "no-such-exit"]);
		expect(bad.exitCode).toBe(1);
		expect(bad.stderr.trim().split("\n")).toHaveLength(1);
		expect(bad.stderr).toMatch(/no exit node named 'no-such-exit'/);

		// skip_auto_apply: offered, not applied, until selected (by its network id here).
		const offered = (await routes()).find((r) => r.network_id === "exit");
		expect(offered?.network).toBe("0.0.0.0/0");
		expect(offered?.installed).toBe(false);
		expect((await kernelState(rl.c.host)).routes).not.toContain("default");
		const use = await rl.c.cli(["exit-node", "use", "exit"]);
		expect(use.exitCode, use.stderr).toBe(0);
		await waitFor(
			"default route in the agent's table",
			async () =>
				(await kernelState(rl.c.host)).routes.includes("default dev starling0") ? true : undefined,
			10_000,
		);
		const routeGet = async (dst: string) =>
			(await rl.c.host.exec("ip", ["-4", "route", "get", dst])).stdout;
		expect(await routeGet(rl.x.address)).toMatch(/dev starling0 table 21332/);
		// Management, signal, relay, STUN (all on ctl) and the peers' endpoints: underlay.
		expect(await routeGet(rl.ctl.host.address)).toMatch(/dev eth0/);
		for (const r of [rl.r1Router, rl.r2Router, rl.eRouter])
			expect(await routeGet(r.wanAddress)).toMatch(/dev eth0/);
		// The "internet" host sees E's address.
		const stream = startEcho(rl, rl.x.address, 100);
		try {
			const reply = await firstReplyVia(stream, rl.eRouter.lanAddress, 0, 20_000);
			expect(reply.seenAs).toBe(rl.eRouter.lanAddress);
		} finally {
			await stream.kill();
		}
		// Still connected to the control plane and to every peer a few seconds on.
		await new Promise((r) => setTimeout(r, 3_000));
		const s = await rl.c.status();
		expect(s.management.connected).toBe(true);
		expect(s.signal.connected).toBe(true);
		expect(s.peers?.every((p) => p.connection_state === "connected")).toBe(true);
		// Killing the exit node does not cut C off from management.
		await rl.e.daemon.kill("SIGKILL");
		await new Promise((r) => setTimeout(r, 3_000));
		expect((await rl.c.status()).management.connected).toBe(true);

		const off = await rl.c.cli(["exit-node", "off"]);
		expect(off.exitCode, off.stderr).toBe(0);
		expect((await kernelState(rl.c.host)).routes).not.toContain("default");
		expect((await routes()).find((r) => r.network_id === "exit")?.installed).toBe(false);
		// The choice is remembered (0600).
		const file = await rl.c.host.exec("stat", ["-c", "%a", "/var/lib/starling/exit-node.json"]);
		expect(file.stdout.trim()).toBe("600");
	}, 120_000);

	it("down, SIGKILL + uninstall: no route, rule or table left behind", async () => {
		const down = await rl.c.cli(["down"]);
		expect(down.exitCode, down.stderr).toBe(0);
		expect(await kernelState(rl.c.host)).toEqual({ routes: "", rules: "" });

		const up = await rl.c.cli(["up"]);
		expect(up.exitCode, up.stderr).toBe(0);
		await waitFor(
			"office route back",
			async () => ((await kernelState(rl.c.host)).routes.includes(OFFICE) ? true : undefined),
			20_000,
		);
		await rl.c.daemon.kill("SIGKILL");
		// A killed daemon leaves them; the next start (before coming back up) removes them.
		expect((await kernelState(rl.c.host)).routes).toContain(OFFICE);
		await rl.c.host.exec("mkdir", ["-p", "/var/lib/starling/systemd"]);
		const uninstall = await rl.c.host.exec(process.execPath, [CLI, "service", "uninstall"], {
			env: {
				STARLING_DATA_DIR: "/var/lib/starling",
				STARLING_SOCKET: "/var/lib/starling/starling.sock",
				STARLING_SYSTEMD_DIR: "/var/lib/starling/systemd",
			},
			allowFailure: true,
		});
		expect(uninstall.exitCode, uninstall.stderr).toBe(0);
		expect(await kernelState(rl.c.host)).toEqual({ routes: "", rules: "" });

		// A daemon started again after the SIGKILL (it was up: it comes back up
		// by itself, clearing leftovers first), then `down`: nothing left.
		rl.c.daemon = spawnRouteDaemon(rl.c.host);
		await rl.c.daemon.waitForOutput(/daemon listening/, 30_000);
		await waitFor(
			"office route after the restart",
			async () => ((await kernelState(rl.c.host)).routes.includes(OFFICE) ? true : undefined),
			30_000,
		);
		const down2 = await rl.c.cli(["down"]);
		expect(down2.exitCode, down2.stderr).toBe(0);
		expect(await kernelState(rl.c.host)).toEqual({ routes: "", rules: "" });
	}, 120_000);
});
