// Relay fallback and upgrade to a direct path: two agents on a LAN whose
// UDP to each other is blocked, so ICE cannot find a path; the relay (a
// WebSocket over TCP in the control host) carries their WireGuard traffic
// until the block goes, then they move to a direct path without a restart.
import { Lab, labSkipReason } from "@starling/lab";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AgentHost, ControlPlane, waitFor } from "./fixture.js";

describe.skipIf(labSkipReason)("relay fallback", () => {
	let lab: Lab;
	let ctl: ControlPlane;
	let a: AgentHost;
	let b: AgentHost;

	/** Drops UDP between the two agent hosts, in a table of the test's own. */
	async function blockUdp(on: AgentHost, other: AgentHost): Promise<void> {
		await on.host.exec("nft", ["-f", "-"], {
			input: `table inet test-block {
	chain input { type filter hook input priority -10; policy accept; ip saddr ${other.host.address} meta l4proto udp drop; }
	chain output { type filter hook output priority -10; policy accept; ip daddr ${other.host.address} meta l4proto udp drop; }
}`,
		});
	}

	beforeAll(async () => {
		lab = await Lab.create("e2erl");
		const lan = await lab.lan("lan", "198.18.12.0/24");
		ctl = new ControlPlane(await lab.host("ctl", { lan }), { relay: true });
		await ctl.start();
		a = new AgentHost(await lab.host("a", { lan }));
		b = new AgentHost(await lab.host("b", { lan }));
		await blockUdp(a, b);
		await blockUdp(b, a);
		await a.startDaemon();
		await b.startDaemon();
	}, 60_000);

	afterEach(async (context) => {
		if (context.task.result?.state !== "fail") return;
		for (const x of [a, b]) {
			console.error(x?.logs());
			console.error(
				(await x.host.exec("wg", ["show", "starling0"], { allowFailure: true })).stdout,
			);
		}
	});

	afterAll(async () => {
		await lab?.destroy();
	}, 30_000);

	it("relays when no direct path exists, and says why", async () => {
		const key = await ctl.createSetupKey();
		for (const x of [a, b]) {
			const r = await x.starling(["up", "--management-url", ctl.url, "--setup-key", key]);
			expect(r.exitCode, r.stderr).toBe(0);
		}
		const ipOfB = await b.overlayIp();
		const started = Date.now();
		await waitFor("a pings b through the relay", async () =>
			(await a.host.ping(ipOfB, { count: 1, timeoutSeconds: 1 })) ? true : undefined,
		);
		expect(Date.now() - started).toBeLessThan(10_000);
		const peer = await waitFor("a reports the path to b as relayed", async () => {
			const p = (await a.status()).peers?.[0];
			return p?.path_type === "relayed" ? p : undefined;
		});
		expect(peer.connection_state).toBe("connected");
		expect(peer.remote_endpoint).toBe(ctl.relayUrl);
		expect(peer.reason).toMatch(/^relayed: /);
	}, 60_000);

	it("moves to a direct path once UDP works, without breaking the tunnel", async () => {
		const ipOfB = await b.overlayIp();
		for (const x of [a, b]) await x.host.exec("nft", ["delete", "table", "inet", "test-block"]);
		// Ping 5 times a second while the path changes.
		let sent = 0;
		let lost = 0;
		let direct = false;
		const deadline = Date.now() + 75_000;
		while (!direct && Date.now() < deadline) {
			const ok = await a.host.ping(ipOfB, { count: 1, timeoutSeconds: 1 });
			sent++;
			if (!ok) lost++;
			if (sent % 10 === 0) direct = (await a.status()).peers?.[0]?.path_type === "p2p";
			await new Promise((r) => setTimeout(r, 200));
		}
		expect(direct).toBe(true);
		for (let i = 0; i < 10; i++) {
			sent++;
			if (!(await a.host.ping(ipOfB, { count: 1, timeoutSeconds: 1 }))) lost++;
		}
		expect(lost).toBeLessThanOrEqual(1);
		const peer = (await a.status()).peers?.[0];
		expect(peer?.remote_endpoint).toMatch(/^198\.18\.12\.\d+:\d+$/);
	}, 90_000);

	it("a direct path that stops delivering goes back to the relay within 10 s, and P2P comes back", async () => {
		const ipOfB = await b.overlayIp();
		expect((await a.status()).peers?.[0]?.path_type).toBe("p2p");
		// WireGuard itself sends directly: if it roamed to the relay bridge (the
		// peer's last packets through the relay), the engine puts it back.
		for (const x of [a, b])
			await waitFor(
				`${x.name}'s WireGuard endpoint is direct`,
				async () => {
					const r = await x.host.exec("wg", ["show", "starling0", "endpoints"]);
					return /\s198\.18\.12\.\d+:\d+/.test(r.stdout) ? true : undefined;
				},
				15_000,
				500,
			);
		// An established path: probing starts once ICE has let go of its port
		// (3 s after the path came up) and sees traffic.
		for (let i = 0; i < 30; i++) {
			await a.host.ping(ipOfB, { count: 1, timeoutSeconds: 1 });
			await new Promise((r) => setTimeout(r, 200));
		}
		// The path dies under traffic (as when a NAT drops the mapping).
		await blockUdp(a, b);
		await blockUdp(b, a);
		const blockedAt = Date.now();
		let firstLostAt: number | undefined;
		let backAt: number | undefined;
		while (Date.now() - blockedAt < 30_000) {
			const at = Date.now();
			const ok = await a.host.ping(ipOfB, { count: 1, timeoutSeconds: 1 });
			if (!ok) firstLostAt ??= at;
			else if (firstLostAt !== undefined) {
				backAt = Date.now();
				break;
			}
			await new Promise((r) => setTimeout(r, 200));
		}
		expect(firstLostAt, "the block did not stop the direct path").toBeDefined();
		expect(backAt, "pings did not come back through the relay within 30 s").toBeDefined();
		const outageS = (backAt! - blockedAt) / 1000;
		const pathDown = [a, b].map((x) => {
			const line = x.daemon
				?.output()
				.split("\n")
				.findLast((l) => l.includes('"msg":"path down"'));
			const at = line ? Date.parse(JSON.parse(line).time as string) : Number.NaN;
			const reason = line ? (JSON.parse(line).reason as string) : "";
			return `${x.name} ${((at - blockedAt) / 1000).toFixed(1)} s, ${reason}`;
		});
		console.log(
			`direct path blocked: pings back through the relay after ${outageS.toFixed(1)} s (path down: ${pathDown.join(", ")})`,
		);
		expect(outageS).toBeLessThanOrEqual(10);
		expect((await a.status()).peers?.[0]?.path_type).toBe("relayed");
		// One side's probes noticed (the status shows the latest retry's failure by now).
		const logs = `${a.daemon?.output()}\n${b.daemon?.output()}`;
		expect(logs).toMatch(/path lost: no answer on the direct path/);
		// ICE keeps being retried while relayed: unblocked, the path is direct again.
		for (const x of [a, b]) await x.host.exec("nft", ["delete", "table", "inet", "test-block"]);
		await waitFor(
			"a direct path again",
			async () => ((await a.status()).peers?.[0]?.path_type === "p2p" ? true : undefined),
			75_000,
			1_000,
		);
		expect(await a.host.ping(ipOfB, { count: 1, timeoutSeconds: 2 })).toBe(true);
	}, 150_000);

	it("a relay restart moves relayed peers back onto it without manual action", async () => {
		const ipOfB = await b.overlayIp();
		await blockUdp(a, b);
		await blockUdp(b, a);
		await waitFor(
			"a relayed path",
			async () => ((await a.status()).peers?.[0]?.path_type === "relayed" ? true : undefined),
			30_000,
			500,
		);
		await ctl.relay?.kill("SIGKILL");
		expect(await a.host.ping(ipOfB, { count: 1, timeoutSeconds: 1 })).toBe(false);
		await ctl.startRelay();
		const restartedAt = Date.now();
		await waitFor(
			"a pings b through the restarted relay",
			async () => ((await a.host.ping(ipOfB, { count: 1, timeoutSeconds: 1 })) ? true : undefined),
			45_000,
			200,
		);
		console.log(
			`relay restarted: pings back after ${((Date.now() - restartedAt) / 1000).toFixed(1)} s`,
		);
		const peer = (await a.status()).peers?.[0];
		expect(peer?.path_type).toBe("relayed");
		expect(peer?.remote_endpoint).toBe(ctl.relayUrl);
		for (const x of [a, b]) await x.host.exec("nft", ["delete", "table", "inet", "test-block"]);
	}, 120_000);

	it("an established direct path survives signal and management being stopped", async () => {
		const ipOfB = await b.overlayIp();
		await waitFor(
			"a direct path",
			async () => ((await a.status()).peers?.[0]?.path_type === "p2p" ? true : undefined),
			75_000,
			1_000,
		);
		await ctl.signal?.kill();
		await ctl.management?.kill();
		try {
			// 40 s: past the 25 s keepalives and the 35 s silence rule, with traffic all along.
			let lost = 0;
			for (let i = 0; i < 200; i++) {
				if (!(await a.host.ping(ipOfB, { count: 1, timeoutSeconds: 1 }))) lost++;
				await new Promise((r) => setTimeout(r, 200));
			}
			expect(lost).toBeLessThanOrEqual(1);
			expect((await a.status()).peers?.[0]?.path_type).toBe("p2p");
		} finally {
			await ctl.startSignal();
			await ctl.startManagement();
		}
	}, 150_000);
});
