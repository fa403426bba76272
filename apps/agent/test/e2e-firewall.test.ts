// The agent's inbound firewall end to end: real management and signal, real
// agents (daemon + CLI) in lab hosts. Works with a management that sends no
// access policies (firewall_enforced unset: the table allows everything) and
// with one that does (the Default policy, All to All, is one rule allowing
// the whole network). Rules per policy are covered by
// src/netfilter/firewall.lab.test.ts; policies through the REST API by the
// access-control end-to-end tests.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Host, Lab, type LabProcess, type Lan, labSkipReason } from "@starling/lab";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AgentHost, ControlPlane, waitFor as waitForEvery } from "./fixture.js";

/** What `status` says with an untouched account, whichever kind of management runs. */
const OPEN_OR_DEFAULT_POLICY =
	/^(open \(management sends no access policies\)|enforcing \(\d+ rules?\))$/;
/** An `nft` that fails the way it does without privileges, first in the PATH of one daemon. */
const FAKE_NFT = `#!/bin/sh
echo "netlink: Error: cache initialization failed: Operation not permitted" >&2
exit 1
`;
const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

describe.skipIf(labSkipReason)("the agent's firewall, end to end", () => {
	let lab: Lab;
	let lan: Lan;
	let managementUrl = "";
	let setupKey = "";
	const agents: { host: Host; daemon: LabProcess }[] = [];

	const starling = (host: Host, args: string[]) => new AgentHost(host).starling(args);
	const status = (host: Host) => new AgentHost(host).status();
	async function startDaemon(host: Host, env: Record<string, string> = {}): Promise<LabProcess> {
		const agent = new AgentHost(host);
		await agent.startDaemon(env);
		return agent.daemon!;
	}

	/** Our table as the kernel has it (the real nft, whatever the daemon's PATH). */
	async function firewallTable(host: Host): Promise<string | undefined> {
		const r = await host.exec("/usr/sbin/nft", ["list", "table", "inet", "starling-firewall"], {
			allowFailure: true,
		});
		return r.exitCode === 0 ? r.stdout : undefined;
	}

	const waitFor = <T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000) =>
		waitForEvery(what, probe, ms);

	beforeAll(async () => {
		lab = await Lab.create("fwe2e");
		lan = await lab.lan("lan", "198.18.61.0/24");
		const control = new ControlPlane(await lab.host("ctl", { lan }));
		await control.start();
		managementUrl = control.url;
		setupKey = await control.createSetupKey("fw");
		for (const name of ["a", "b"]) {
			const host = await lab.host(name, { lan });
			agents.push({ host, daemon: await startDaemon(host) });
		}
	}, 60_000);

	afterEach((context) => {
		if (context.task.result?.state !== "fail") return;
		console.error(lab.logs());
	});

	afterAll(async () => {
		await lab?.destroy();
	}, 30_000);

	it("up installs the table, status says what it enforces, down removes it", async () => {
		for (const { host } of agents) {
			const up = await starling(host, [
				"up",
				"--management-url",
				managementUrl,
				"--setup-key",
				setupKey,
			]);
			expect(up.exitCode, up.stderr).toBe(0);
			expect(up.stdout).toMatch(/^firewall: (open|enforcing) /m);
		}
		const [a, b] = agents as [(typeof agents)[0], (typeof agents)[0]];
		const sa = await status(a.host);
		expect(sa.firewall).toMatch(OPEN_OR_DEFAULT_POLICY);
		console.log(`firewall of a: ${sa.firewall}\n${await firewallTable(a.host)}`);
		const text = await starling(a.host, ["status"]);
		expect(text.stdout).toMatch(/^Firewall: (Open|Enforcing) \(/m);
		const table = await firewallTable(a.host);
		expect(table).toMatch(/iifname "starling0" jump from-overlay/);
		// Everything (no policies) or the account network (the Default policy).
		expect(table).toMatch(/ip saddr (0\.0\.0\.0\/0|100\.\d+\.\d+\.\d+\/\d+) accept/);
		const ipOfA = sa.overlay_address.split("/")[0]!;
		const ipOfB = (await status(b.host)).overlay_address.split("/")[0]!;
		await waitFor("a pings b", async () =>
			(await a.host.ping(ipOfB, { count: 1, timeoutSeconds: 1 })) ? true : undefined,
		);
		await waitFor("b pings a", async () =>
			(await b.host.ping(ipOfA, { count: 1, timeoutSeconds: 1 })) ? true : undefined,
		);

		const down = await starling(b.host, ["down"]);
		expect(down.exitCode, down.stderr).toBe(0);
		expect(await firewallTable(b.host)).toBeUndefined();
		expect((await status(b.host)).firewall).toBe("");
		const up = await starling(b.host, ["up"]);
		expect(up.exitCode, up.stderr).toBe(0);
		expect(await firewallTable(b.host)).toBeDefined();
		await waitFor("a pings b again", async () =>
			(await a.host.ping(ipOfB, { count: 1, timeoutSeconds: 1 })) ? true : undefined,
		);
	}, 90_000);

	it("a daemon that stops removes the table; after a crash the next start removes the leftover", async () => {
		const a = agents[0]!;
		await a.daemon.kill("SIGTERM");
		expect(await firewallTable(a.host)).toBeUndefined();
		a.daemon = await startDaemon(a.host);
		await waitFor("a back up", async () =>
			(await status(a.host)).state === "up" ? true : undefined,
		);
		expect(await firewallTable(a.host)).toBeDefined();
		await a.daemon.kill("SIGKILL");
		// A crash leaves the table (and interface); an unrelated table must survive the cleanup.
		await a.host.exec("/usr/sbin/nft", ["add", "table", "inet", "someone-else"]);
		expect(await firewallTable(a.host)).toBeDefined();
		await a.host.exec("ip", ["link", "del", "starling0"], { allowFailure: true });
		// Restart without coming back up, so only the cleanup runs.
		const config = join(a.host.stateDir, "config.json");
		writeFileSync(
			config,
			JSON.stringify({ ...JSON.parse(readFileSync(config, "utf8")), wantUp: false }),
		);
		a.daemon = await startDaemon(a.host);
		await waitFor("the leftover table is gone", async () =>
			(await firewallTable(a.host)) === undefined ? true : undefined,
		);
		const tables = await a.host.exec("/usr/sbin/nft", ["list", "tables"]);
		expect(tables.stdout).toMatch(/table inet someone-else/);
	}, 60_000);

	it("without usable nftables up fails with one line, unless --disable-firewall; the choice is remembered", async () => {
		const host = await lab.host("c", { lan });
		const bin = join(host.stateDir, "fakebin");
		mkdirSync(bin, { recursive: true });
		writeFileSync(join(bin, "nft"), FAKE_NFT);
		chmodSync(join(bin, "nft"), 0o755);
		await startDaemon(host, { PATH: `/var/lib/starling/fakebin:${SYSTEM_PATH}` });

		const refused = await starling(host, [
			"up",
			"--management-url",
			managementUrl,
			"--setup-key",
			setupKey,
		]);
		expect(refused.exitCode).toBe(1);
		expect(refused.stderr.trim().split("\n")).toHaveLength(1);
		expect(refused.stderr).toMatch(
			/^starling: nftables is not usable, so inbound access policies can't be enforced \(.*Operation not permitted.*\); .*'starling up --disable-firewall'/,
		);
		expect((await host.exec("ip", ["-o", "link", "show"])).stdout).not.toMatch(/starling0/);
		expect((await status(host)).state).toBe("down");

		const contradiction = await starling(host, ["up", "--disable-firewall", "--enable-firewall"]);
		expect(contradiction.exitCode).toBe(2);

		const up = await starling(host, [
			"up",
			"--management-url",
			managementUrl,
			"--setup-key",
			setupKey,
			"--disable-firewall",
		]);
		expect(up.exitCode, up.stderr).toBe(0);
		expect(up.stdout).toMatch(/^firewall: disabled by operator$/m);
		const s = await status(host);
		expect(s.state).toBe("up");
		expect(s.firewall).toBe("disabled by operator");
		expect(await firewallTable(host)).toBeUndefined();

		expect((await starling(host, ["down"])).exitCode).toBe(0);
		expect((await status(host)).firewall).toBe("disabled by operator");
		const again = await starling(host, ["up"]);
		expect(again.exitCode, again.stderr).toBe(0);
		expect((await status(host)).firewall).toBe("disabled by operator");
		expect((await starling(host, ["down"])).exitCode).toBe(0);

		const enable = await starling(host, ["up", "--enable-firewall"]);
		expect(enable.exitCode).toBe(1);
		expect(enable.stderr).toMatch(/nftables is not usable/);
	}, 90_000);
});
