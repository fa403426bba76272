// End to end on one LAN: real management and signal, real agents (daemon +
// CLI) with wireguard-go, each in its own network namespace of the lab.
import { Lab, type Lan, labSkipReason } from "@starling/lab";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AgentHost, ControlPlane, waitFor } from "./fixture.js";

describe.skipIf(labSkipReason)("agents on one LAN", () => {
	let lab: Lab;
	let ctl: ControlPlane;
	const agents: AgentHost[] = [];
	let setupKey = "";
	let lan: Lan;

	beforeAll(async () => {
		lab = await Lab.create("e2e");
		lan = await lab.lan("lan", "198.18.10.0/24");
		ctl = new ControlPlane(await lab.host("ctl", { lan }));
		await ctl.start();
		setupKey = await ctl.createSetupKey("lan");
		for (const name of ["a", "b", "c"]) agents.push(new AgentHost(await lab.host(name, { lan })));
		for (const a of agents) await a.startDaemon();
	}, 60_000);

	afterEach((context) => {
		// The daemons' JSON logs are the first thing to read when a test fails.
		if (context.task.result?.state === "fail") for (const a of agents) console.error(a.logs());
	});

	afterAll(async () => {
		await lab?.destroy();
	}, 30_000);

	it("three agents join with one setup key, get distinct addresses and all ping all", async () => {
		for (const a of agents) {
			const r = await a.starling(["up", "--management-url", ctl.url, "--setup-key", setupKey]);
			expect(r.exitCode, r.stderr).toBe(0);
			expect(r.stdout).toMatch(/interface starling0 is up \(userspace\)/);
		}
		const statuses = await Promise.all(agents.map((a) => a.status()));
		const ips = statuses.map((s) => s.overlay_address.split("/")[0]!);
		expect(new Set(ips).size).toBe(3);
		for (const s of statuses) expect(s.interface_type).toBe("userspace");
		for (const [i, a] of agents.entries()) {
			for (const [j, ip] of ips.entries()) {
				if (i === j) continue;
				await waitFor(`${a.host.name} → ${ip}`, async () =>
					(await a.host.ping(ip, { count: 1, timeoutSeconds: 1 })) ? true : undefined,
				);
			}
		}
		for (const a of agents) {
			const s = await waitFor("both peers connected", async () => {
				const st = await a.status();
				return st.peers_connected === 2 ? st : undefined;
			});
			expect(s.peers_total).toBe(2);
			expect(s.management.connected).toBe(true);
			expect(s.signal.connected).toBe(true);
			for (const p of s.peers ?? []) {
				expect(p.connection_state).toBe("connected");
				expect(p.path_type).toBe("p2p");
				// On a LAN the pair is host to host; one side may first learn the
				// other's address as peer-reflexive, before its candidate arrives.
				expect(["host", "prflx"]).toContain(p.remote_candidate_type);
				expect(p.remote_endpoint).toMatch(/^198\.18\.10\.\d+:\d+$/);
			}
		}
	}, 90_000);

	it("a second up while up, a wrong key, an unreachable management and unknown flags fail with one line", async () => {
		const again = await agents[0]!.starling(["up"]);
		expect(again.exitCode).not.toBe(0);
		expect(again.stderr.trim().split("\n")).toHaveLength(1);
		expect(again.stderr).toMatch(/already up/);
		const unknown = await agents[0]!.starling(["up", "--frobnicate"]);
		expect(unknown.exitCode).toBe(2);
		expect(unknown.stderr.trim().split("\n")).toHaveLength(1);
		const badCommand = await agents[0]!.starling(["sideways"]);
		expect(badCommand.exitCode).toBe(2);

		// A host that is not up yet: every failure leaves no interface behind.
		const d = new AgentHost(await lab.host("d", { lan }));
		const noDaemon = await d.starling(["status"]);
		expect(noDaemon.exitCode).toBe(1);
		expect(noDaemon.stderr).toMatch(/daemon is not running/);
		await d.startDaemon();
		const wrongKey = await d.starling([
			"up",
			"--management-url",
			ctl.url,
			"--setup-key",
			"00000000-0000-0000-0000-000000000000",
		]);
		expect(wrongKey.exitCode).toBe(1);
		expect(wrongKey.stderr.trim().split("\n")).toHaveLength(1);
		expect(wrongKey.stderr).toMatch(/login refused: setup key is not valid/);
		const unreachable = await d.starling([
			"up",
			"--management-url",
			"http://198.18.10.254:33073",
			"--setup-key",
			setupKey,
		]);
		expect(unreachable.exitCode).toBe(1);
		expect(unreachable.stderr.trim().split("\n")).toHaveLength(1);
		expect(unreachable.stderr).toMatch(/unreachable/);
		const links = await d.host.exec("ip", ["-o", "link", "show"]);
		expect(links.stdout).not.toMatch(/starling0/);
		const tables = await d.host.exec("nft", ["list", "tables"]);
		expect(tables.stdout).not.toMatch(/starling/);
		expect((await d.status()).state).toBe("down");
		await d.daemon!.kill("SIGTERM");
	}, 60_000);

	it("a restarted agent keeps its overlay address and reconnects", async () => {
		const before = await agents[0]!.status();
		await agents[0]!.daemon!.kill("SIGTERM");
		// The daemon removes its interface on exit.
		expect((await agents[0]!.host.exec("ip", ["-o", "link", "show"])).stdout).not.toMatch(
			/starling0/,
		);
		await agents[0]!.startDaemon();
		const after = await waitFor(
			"agent a back up",
			async () => {
				const s = await agents[0]!.status();
				return s.state === "up" && s.peers_connected === 2 ? s : undefined;
			},
			30_000,
		);
		expect(after.overlay_address).toBe(before.overlay_address);
		const ipOfB = (await agents[1]!.status()).overlay_address.split("/")[0]!;
		await waitFor("a pings b", async () =>
			(await agents[0]!.host.ping(ipOfB, { count: 1, timeoutSeconds: 1 })) ? true : undefined,
		);
	}, 60_000);

	it("pings keep working while management is stopped, and agents re-sync after it restarts", async () => {
		const ipOfC = (await agents[2]!.status()).overlay_address.split("/")[0]!;
		await ctl.management!.kill("SIGTERM");
		for (let i = 0; i < 5; i++) {
			expect(await agents[0]!.host.ping(ipOfC, { count: 1, timeoutSeconds: 2 })).toBe(true);
			await new Promise((r) => setTimeout(r, 300));
		}
		await waitFor("a notices management is gone", async () =>
			(await agents[0]!.status()).management.connected ? undefined : true,
		);
		await ctl.startManagement();
		for (const a of agents) {
			await waitFor(
				`${a.host.name} re-synced`,
				async () => {
					const s = await a.status();
					return s.management.connected && s.peers_total === 2 ? true : undefined;
				},
				30_000,
			);
		}
		expect(await agents[0]!.host.ping(ipOfC, { count: 1, timeoutSeconds: 2 })).toBe(true);
	}, 90_000);

	it("a signal restart leaves tunnels up, and agents reconnect to it by themselves", async () => {
		const ipOfB = (await agents[1]!.status()).overlay_address.split("/")[0]!;
		await ctl.signal!.kill("SIGTERM");
		await waitFor("a notices signal is gone", async () =>
			(await agents[0]!.status()).signal.connected ? undefined : true,
		);
		expect(await agents[0]!.host.ping(ipOfB, { count: 2, timeoutSeconds: 2 })).toBe(true);
		await ctl.startSignal();
		for (const a of agents) {
			await waitFor(
				`${a.host.name} back on signal`,
				async () => ((await a.status()).signal.connected ? true : undefined),
				30_000,
			);
		}
		expect(await agents[0]!.host.ping(ipOfB, { count: 1, timeoutSeconds: 2 })).toBe(true);
	}, 60_000);

	it("after a daemon crash (SIGKILL) the next start cleans up and rebuilds", async () => {
		const before = await agents[0]!.status();
		await agents[0]!.daemon!.kill("SIGKILL");
		await agents[0]!.startDaemon();
		const after = await waitFor(
			"agent a rebuilt",
			async () => {
				const s = await agents[0]!.status();
				return s.state === "up" && s.peers_connected === s.peers_total && s.peers_total > 0
					? s
					: undefined;
			},
			30_000,
		);
		expect(after.overlay_address).toBe(before.overlay_address);
		// Exactly one wireguard-go for the interface: the crashed run's was replaced, not duplicated.
		// (pgrep sees every host's processes; count those in this host's network namespace.)
		const count = async () =>
			(
				await agents[0]!.host.exec("sh", [
					"-c",
					'n=$(readlink /proc/self/ns/net); c=0; for p in $(pgrep -f "^wireguard-go -f starling0"); do [ "$(readlink /proc/$p/ns/net)" = "$n" ] && c=$((c+1)); done; echo $c',
				])
			).stdout.trim();
		await waitFor(
			"one wireguard-go in host a",
			async () => ((await count()) === "1" ? true : undefined),
			10_000,
		);
		const ipOfB = (await agents[1]!.status()).overlay_address.split("/")[0]!;
		await waitFor("a pings b", async () =>
			(await agents[0]!.host.ping(ipOfB, { count: 1, timeoutSeconds: 1 })) ? true : undefined,
		);
	}, 60_000);

	it("down on one agent shows it offline to the others; up brings it back", async () => {
		const b = agents[1]!;
		const ipOfB = (await b.status()).overlay_address.split("/")[0]!;
		const down = await b.starling(["down"]);
		expect(down.exitCode, down.stderr).toBe(0);
		expect((await b.host.exec("ip", ["-o", "link", "show"])).stdout).not.toMatch(/starling0/);
		await waitFor("a sees b offline", async () => {
			const s = await agents[0]!.status();
			const peer = s.peers?.find((p) => p.overlay_ip === ipOfB);
			return peer && !peer.peer_online ? true : undefined;
		});
		const up = await b.starling(["up"]);
		expect(up.exitCode, up.stderr).toBe(0);
		await waitFor(
			"a sees b connected again",
			async () => {
				const s = await agents[0]!.status();
				return s.peers_connected === 2 ? true : undefined;
			},
			30_000,
		);
	}, 60_000);

	it("a peer deleted through the REST API disappears from the others' WireGuard", async () => {
		const c = await agents[2]!.status();
		const peers = (await ctl.api("GET", "/api/peers")).json as { id: string; ip: string }[];
		const target = peers.find(
			(p) => `${p.ip}/16` === c.overlay_address || c.overlay_address.startsWith(`${p.ip}/`),
		);
		expect(target).toBeDefined();
		const del = await ctl.api("DELETE", `/api/peers/${target!.id}`);
		expect(del.status).toBe(200);
		const keyOfC = c.wg_public_key;
		for (const a of agents.slice(0, 2)) {
			await waitFor(
				`${a.host.name} drops c`,
				async () => {
					const dump = await a.host.exec("wg", ["show", "starling0", "dump"]);
					return dump.stdout.includes(keyOfC) ? undefined : true;
				},
				10_000,
			);
		}
		// The deleted agent goes down by itself.
		await waitFor("c is down", async () =>
			(await agents[2]!.status()).state === "down" ? true : undefined,
		);
	}, 60_000);
});
