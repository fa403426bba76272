// Two relays: a pair whose UDP to each other is blocked meets on the relay
// its keys rank first (both sides agree with nothing exchanged); kill -9 of
// that relay moves the pair to the other one, and pings come back through it
// within a bound this test measures and prints.
import { Lab, labSkipReason } from "@starling/lab";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AgentHost, ControlPlane, waitFor } from "./fixture.js";

/** Longest outage accepted from kill -9 of the pair's relay to pings through the other. */
const FAILOVER_BOUND_MS = 10_000;

describe.skipIf(labSkipReason)("relay failover", () => {
	let lab: Lab;
	let ctl: ControlPlane;
	let a: AgentHost;
	let b: AgentHost;

	async function blockUdp(on: AgentHost, other: AgentHost): Promise<void> {
		await on.host.exec("nft", ["-f", "-"], {
			input: `table inet test-block {
	chain input { type filter hook input priority -10; policy accept; ip saddr ${other.host.address} meta l4proto udp drop; }
	chain output { type filter hook output priority -10; policy accept; ip daddr ${other.host.address} meta l4proto udp drop; }
}`,
		});
	}

	async function relayOfPair(x: AgentHost): Promise<string | undefined> {
		const peer = (await x.status()).peers?.[0];
		return peer?.path_type === "relayed" ? peer.remote_endpoint : undefined;
	}

	beforeAll(async () => {
		lab = await Lab.create("tlsrf");
		const lan = await lab.lan("lan", "198.18.32.0/24");
		ctl = new ControlPlane(await lab.host("ctl", { lan }), { relay: true, relayCount: 2 });
		await ctl.start();
		a = new AgentHost(await lab.host("a", { lan }));
		b = new AgentHost(await lab.host("b", { lan }));
		await blockUdp(a, b);
		await blockUdp(b, a);
		await Promise.all([a.startDaemon(), b.startDaemon()]);
	}, 60_000);

	afterEach(async (context) => {
		if (context.task.result?.state !== "fail") return;
		for (const x of [a, b]) console.error(x?.logs(60));
	});

	afterAll(async () => {
		await lab?.destroy();
	}, 30_000);

	it("a pair meets on one relay, and moves to the other when it is killed", async () => {
		const key = await ctl.createSetupKey();
		for (const x of [a, b]) {
			const r = await x.starling(["up", "--management-url", ctl.url, "--setup-key", key]);
			expect(r.exitCode, r.stderr).toBe(0);
		}
		const ipOfB = await b.overlayIp();
		await waitFor("a pings b through a relay", async () =>
			(await a.host.ping(ipOfB, { count: 1, timeoutSeconds: 1 })) ? true : undefined,
		);
		const used = await waitFor("a's path to b is relayed", () => relayOfPair(a));
		expect(ctl.relayUrls).toContain(used);
		// Both sides chose the same relay on their own.
		expect(await waitFor("b's path to a is relayed", () => relayOfPair(b))).toBe(used);
		const other = ctl.relayUrls.find((u) => u !== used)!;

		const index = ctl.relayUrls.indexOf(used);
		await ctl.relays[index]?.kill("SIGKILL");
		const killedAt = Date.now();
		let backAt: number | undefined;
		let lost = 0;
		while (Date.now() - killedAt < 30_000) {
			if (await a.host.ping(ipOfB, { count: 1, timeoutSeconds: 1 })) {
				backAt = Date.now();
				break;
			}
			lost++;
			await new Promise((r) => setTimeout(r, 100));
		}
		expect(backAt, "pings did not come back within 30 s").toBeDefined();
		const outageMs = backAt! - killedAt;
		console.log(
			`relay ${used} killed (-9): pings back through ${other} after ${(outageMs / 1000).toFixed(1)} s (${lost} pings lost)`,
		);
		expect(outageMs).toBeLessThanOrEqual(FAILOVER_BOUND_MS);
		expect(await relayOfPair(a)).toBe(other);
		expect(await relayOfPair(b)).toBe(other);
		for (let i = 0; i < 5; i++) {
			expect(await a.host.ping(ipOfB, { count: 1, timeoutSeconds: 1 })).toBe(true);
		}
	}, 90_000);
});
