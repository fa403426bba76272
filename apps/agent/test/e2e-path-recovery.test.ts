// A direct path that died while idle: two agents on a LAN with a direct
// path and a relay; the path sits idle (no probe runs), UDP between them is
// cut, then traffic starts. The traffic itself must make the agent notice
// (probing starts when traffic does, not at a periodic check): pings come
// back through the relay, and once UDP works again the path is direct.
// Bounds are generous (this is not a benchmark: `pnpm bench path-recovery`).
import { Lab, labSkipReason } from "@starling/lab";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AgentHost, ControlPlane, waitFor } from "./fixture.js";

describe.skipIf(labSkipReason)("path recovery", () => {
	let lab: Lab;
	let ctl: ControlPlane;
	let a: AgentHost;
	let b: AgentHost;

	const pathType = async (x: AgentHost) => (await x.status()).peers?.[0]?.path_type;

	beforeAll(async () => {
		lab = await Lab.create("pathrt");
		const lan = await lab.lan("lan", "198.18.14.0/24");
		ctl = new ControlPlane(await lab.host("ctl", { lan }), { relay: true });
		await ctl.start();
		a = new AgentHost(await lab.host("a", { lan }));
		b = new AgentHost(await lab.host("b", { lan }));
		await a.startDaemon();
		await b.startDaemon();
		const key = await ctl.createSetupKey();
		for (const x of [a, b]) {
			const r = await x.starling(["up", "--management-url", ctl.url, "--setup-key", key]);
			expect(r.exitCode, r.stderr).toBe(0);
		}
	}, 60_000);

	afterEach(async (context) => {
		if (context.task.result?.state !== "fail") return;
		for (const x of [a, b]) console.error(x?.logs(80));
	});

	afterAll(async () => {
		await lab?.destroy();
	}, 30_000);

	it("traffic into a direct path cut while idle comes back through the relay, then direct", async () => {
		const ipOfB = await b.overlayIp();
		for (const x of [a, b])
			await waitFor(
				`${x.name} on a direct path`,
				async () => ((await pathType(x)) === "p2p" ? true : undefined),
				60_000,
				1_000,
			);
		expect(await a.host.ping(ipOfB, { count: 1, timeoutSeconds: 2 })).toBe(true);
		// Idle for longer than a probe stays active after traffic (15 s): nothing watches the path.
		await new Promise((r) => setTimeout(r, 17_000));
		await a.dropUdpFrom(b);
		await b.dropUdpFrom(a);
		const cutAt = Date.now();
		await waitFor(
			"a pings b again (through the relay)",
			async () => ((await a.host.ping(ipOfB, { count: 1, timeoutSeconds: 1 })) ? true : undefined),
			20_000,
			100,
		);
		console.log(
			`cut while idle: first answer ${((Date.now() - cutAt) / 1000).toFixed(1)} s after traffic started`,
		);
		expect(await pathType(a)).toBe("relayed");
		// The probe saw it (not WireGuard's 35 s silence check, which this beats by far).
		expect(a.daemon?.output()).toMatch(/path lost: no answer on the direct path/);

		for (const x of [a, b]) await x.restoreUdp();
		await waitFor(
			"a direct path again",
			async () => ((await pathType(a)) === "p2p" ? true : undefined),
			90_000,
			1_000,
		);
		expect(await a.host.ping(ipOfB, { count: 1, timeoutSeconds: 2 })).toBe(true);
	}, 240_000);
});
