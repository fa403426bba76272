// The agent as a route client, in one lab (bench/src/lib-route-lab.ts draws
// it): through management's REST API, C (alone in the receiving group) gets
// the office network behind R1 (metric 10) and R2 (metric 20), and E as a
// skip_auto_apply exit node. Real control plane, wireguard-go, ICE and
// kernel routing; R1, R2 and E forward with their served routes plus a
// masquerade table the lab sets (see the lab file).
// Bounds are generous: `pnpm bench route-failover` measures.
import { Lab, labSkipReason } from "@starling/lab";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
	allowedIps,
	CLI,
	cutUplink,
	firstReplyVia,
	kernelState,
	OFFICE,
	parseReplies,
	type RouteLab,
	restoreUplink,
	setUpRouteLab,
	spawnRouteDaemon,
	startEcho,
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

	it("exit node: selected by name, default route through E, control plane and peers stay on the underlay", async () => {
		const bad = await rl.c.cli(["exit-node", "use", "no-such-exit"]);
		expect(bad.exitCode).toBe(1);
		expect(bad.stderr.trim().split("\n")).toHaveLength(1);
		expect(bad.stderr).toMatch(/no exit node named 'no-such-exit'/);

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
