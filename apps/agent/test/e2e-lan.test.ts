// End to end on one LAN: real management and signal, real agents (daemon +
// CLI) with wireguard-go, each in its own network namespace of the lab.
import { resolve } from "node:path";
import { type Host, Lab, type LabProcess, type Lan, labSkipReason } from "@starling/lab";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

const ROOT = resolve(__dirname, "../../..");
const CLI = resolve(ROOT, "apps/agent/dist/cli/main.js");
const MANAGEMENT = resolve(ROOT, "apps/management/dist/main.js");
const SIGNAL = resolve(ROOT, "apps/signal/dist/main.js");
const NODE = process.execPath;
const AGENT_ENV = {
	STARLING_DATA_DIR: "/var/lib/starling",
	STARLING_SOCKET: "/var/lib/starling/starling.sock",
};

if (labSkipReason) console.warn(`skipping the agent end-to-end tests: ${labSkipReason}`);

interface Control {
	host: Host;
	management: LabProcess | undefined;
	signal: LabProcess;
	url: string;
	token: string;
}

describe.skipIf(labSkipReason)("agents on one LAN", () => {
	let lab: Lab;
	let ctl: Control;
	const agents: { host: Host; daemon: LabProcess | undefined }[] = [];
	let setupKey = "";
	let lan: Lan;

	async function startManagement(host: Host): Promise<LabProcess> {
		const p = host.spawn(NODE, [MANAGEMENT], {
			name: "management",
			env: {
				STARLING_DATA_DIR: "/var/lib/starling/management",
				STARLING_MANAGEMENT_LISTEN: `${host.address}:33073`,
				STARLING_SIGNAL_URL: `http://${host.address}:10000`,
				STARLING_ADMIN_TOKEN_FILE: "/var/lib/starling/admin-token",
				STARLING_SYNC_FLUSH_MS: "20",
			},
		});
		await p.waitForOutput(/management is serving/, 15_000);
		return p;
	}

	/** Calls the REST API from inside the control host (the test process is outside the lab). */
	async function api(
		method: string,
		path: string,
		body?: unknown,
	): Promise<{ status: number; json: unknown }> {
		const script = `fetch(${JSON.stringify(`${ctl.url}${path}`)}, {method: ${JSON.stringify(method)}, headers: {authorization: "Token " + ${JSON.stringify(ctl.token)}, "content-type": "application/json"}, body: ${body === undefined ? "undefined" : JSON.stringify(JSON.stringify(body))}}).then(async r => console.log(JSON.stringify({status: r.status, json: await r.json()})))`;
		const { stdout } = await ctl.host.exec(NODE, ["-e", script]);
		return JSON.parse(stdout) as { status: number; json: unknown };
	}

	function starling(host: Host, args: string[]) {
		return host.exec(NODE, [CLI, ...args], {
			env: AGENT_ENV,
			allowFailure: true,
			timeoutMs: 60_000,
		});
	}

	async function status(host: Host): Promise<StatusJson> {
		const r = await starling(host, ["status", "--json", "--detail"]);
		expect(r.exitCode, r.stderr).toBe(0);
		return JSON.parse(r.stdout) as StatusJson;
	}

	async function startDaemon(i: number): Promise<void> {
		const a = agents[i]!;
		a.daemon = a.host.spawn(NODE, [CLI, "service", "run"], {
			name: `agent-${a.host.name}`,
			env: AGENT_ENV,
		});
		await a.daemon.waitForOutput(/daemon listening/, 10_000);
	}

	async function waitFor<T>(
		what: string,
		probe: () => Promise<T | undefined>,
		timeoutMs = 15_000,
	): Promise<T> {
		const deadline = Date.now() + timeoutMs;
		let last: unknown;
		while (Date.now() < deadline) {
			try {
				const v = await probe();
				if (v !== undefined) return v;
			} catch (err) {
				last = err;
			}
			await new Promise((r) => setTimeout(r, 250));
		}
		throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
	}

	beforeAll(async () => {
		lab = await Lab.create("e2e");
		lan = await lab.lan("lan", "198.18.10.0/24");
		const host = await lab.host("ctl", { lan });
		const signal = host.spawn(NODE, [SIGNAL], {
			name: "signal",
			env: { STARLING_SIGNAL_LISTEN: `${host.address}:10000` },
		});
		await signal.waitForOutput(/listening|serving/i, 10_000);
		ctl = { host, signal, management: undefined, url: `http://${host.address}:33073`, token: "" };
		ctl.management = await startManagement(host);
		ctl.token = (await host.exec("cat", ["/var/lib/starling/admin-token"])).stdout.trim();
		const key = await api("POST", "/api/setup-keys", {
			name: "lan",
			type: "reusable",
			expires_in: 3600,
			auto_groups: [],
			usage_limit: 0,
		});
		expect(key.status).toBe(200);
		setupKey = (key.json as { key: string }).key;
		for (const name of ["a", "b", "c"])
			agents.push({ host: await lab.host(name, { lan }), daemon: undefined });
		for (let i = 0; i < agents.length; i++) await startDaemon(i);
	}, 60_000);

	afterEach((context) => {
		if (context.task.result?.state !== "fail") return;
		// The daemons' JSON logs are the first thing to read when a test fails.
		for (const a of agents) {
			const lines = a.daemon?.output().trim().split("\n").slice(-40) ?? [];
			console.error(`--- agent ${a.host.name} (last ${lines.length} lines)\n${lines.join("\n")}`);
		}
	});

	afterAll(async () => {
		await lab?.destroy();
	}, 30_000);

	it("three agents join with one setup key, get distinct addresses and all ping all", async () => {
		for (const a of agents) {
			const r = await starling(a.host, [
				"up",
				"--management-url",
				ctl.url,
				"--setup-key",
				setupKey,
			]);
			expect(r.exitCode, r.stderr).toBe(0);
			expect(r.stdout).toMatch(/interface starling0 is up \(userspace\)/);
		}
		const statuses = await Promise.all(agents.map((a) => status(a.host)));
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
				const st = await status(a.host);
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
		const again = await starling(agents[0]!.host, ["up"]);
		expect(again.exitCode).not.toBe(0);
		expect(again.stderr.trim().split("\n")).toHaveLength(1);
		expect(again.stderr).toMatch(/already up/);
		const unknown = await starling(agents[0]!.host, ["up", "--frobnicate"]);
		expect(unknown.exitCode).toBe(2);
		expect(unknown.stderr.trim().split("\n")).toHaveLength(1);
		const badCommand = await starling(agents[0]!.host, ["sideways"]);
		expect(badCommand.exitCode).toBe(2);

		// A host that is not up yet: every failure leaves no interface behind.
		const host = await lab.host("d", { lan });
		const noDaemon = await starling(host, ["status"]);
		expect(noDaemon.exitCode).toBe(1);
		expect(noDaemon.stderr).toMatch(/daemon is not running/);
		const daemon = host.spawn(NODE, [CLI, "service", "run"], { name: "agent-d", env: AGENT_ENV });
		await daemon.waitForOutput(/daemon listening/, 10_000);
		const wrongKey = await starling(host, [
			"up",
			"--management-url",
			ctl.url,
			"--setup-key",
			"00000000-0000-0000-0000-000000000000",
		]);
		expect(wrongKey.exitCode).toBe(1);
		expect(wrongKey.stderr.trim().split("\n")).toHaveLength(1);
		expect(wrongKey.stderr).toMatch(/login refused: setup key is not valid/);
		const unreachable = await starling(host, [
			"up",
			"--management-url",
			"http://198.18.10.254:33073",
			"--setup-key",
			setupKey,
		]);
		expect(unreachable.exitCode).toBe(1);
		expect(unreachable.stderr.trim().split("\n")).toHaveLength(1);
		expect(unreachable.stderr).toMatch(/unreachable/);
		const links = await host.exec("ip", ["-o", "link", "show"]);
		expect(links.stdout).not.toMatch(/starling0/);
		const tables = await host.exec("nft", ["list", "tables"]);
		expect(tables.stdout).not.toMatch(/starling/);
		expect((await status(host)).state).toBe("down");
		await daemon.kill("SIGTERM");
	}, 60_000);

	it("a restarted agent keeps its overlay address and reconnects", async () => {
		const before = await status(agents[0]!.host);
		await agents[0]!.daemon!.kill("SIGTERM");
		// The daemon removes its interface on exit.
		expect((await agents[0]!.host.exec("ip", ["-o", "link", "show"])).stdout).not.toMatch(
			/starling0/,
		);
		await startDaemon(0);
		const after = await waitFor(
			"agent a back up",
			async () => {
				const s = await status(agents[0]!.host);
				return s.state === "up" && s.peers_connected === 2 ? s : undefined;
			},
			30_000,
		);
		expect(after.overlay_address).toBe(before.overlay_address);
		const ipOfB = (await status(agents[1]!.host)).overlay_address.split("/")[0]!;
		await waitFor("a pings b", async () =>
			(await agents[0]!.host.ping(ipOfB, { count: 1, timeoutSeconds: 1 })) ? true : undefined,
		);
	}, 60_000);

	it("pings keep working while management is stopped, and agents re-sync after it restarts", async () => {
		const ipOfC = (await status(agents[2]!.host)).overlay_address.split("/")[0]!;
		await ctl.management!.kill("SIGTERM");
		for (let i = 0; i < 5; i++) {
			expect(await agents[0]!.host.ping(ipOfC, { count: 1, timeoutSeconds: 2 })).toBe(true);
			await new Promise((r) => setTimeout(r, 300));
		}
		await waitFor("a notices management is gone", async () =>
			(await status(agents[0]!.host)).management.connected ? undefined : true,
		);
		ctl.management = await startManagement(ctl.host);
		for (const a of agents) {
			await waitFor(
				`${a.host.name} re-synced`,
				async () => {
					const s = await status(a.host);
					return s.management.connected && s.peers_total === 2 ? true : undefined;
				},
				30_000,
			);
		}
		expect(await agents[0]!.host.ping(ipOfC, { count: 1, timeoutSeconds: 2 })).toBe(true);
	}, 90_000);

	it("a signal restart leaves tunnels up, and agents reconnect to it by themselves", async () => {
		const ipOfB = (await status(agents[1]!.host)).overlay_address.split("/")[0]!;
		await ctl.signal.kill("SIGTERM");
		await waitFor("a notices signal is gone", async () =>
			(await status(agents[0]!.host)).signal.connected ? undefined : true,
		);
		expect(await agents[0]!.host.ping(ipOfB, { count: 2, timeoutSeconds: 2 })).toBe(true);
		ctl.signal = ctl.host.spawn(NODE, [SIGNAL], {
			name: "signal",
			env: { STARLING_SIGNAL_LISTEN: `${ctl.host.address}:10000` },
		});
		await ctl.signal.waitForOutput(/listening|serving/i, 10_000);
		for (const a of agents) {
			await waitFor(
				`${a.host.name} back on signal`,
				async () => ((await status(a.host)).signal.connected ? true : undefined),
				30_000,
			);
		}
		expect(await agents[0]!.host.ping(ipOfB, { count: 1, timeoutSeconds: 2 })).toBe(true);
	}, 60_000);

	it("after a daemon crash (SIGKILL) the next start cleans up and rebuilds", async () => {
		const before = await status(agents[0]!.host);
		await agents[0]!.daemon!.kill("SIGKILL");
		await startDaemon(0);
		const after = await waitFor(
			"agent a rebuilt",
			async () => {
				const s = await status(agents[0]!.host);
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
		const ipOfB = (await status(agents[1]!.host)).overlay_address.split("/")[0]!;
		await waitFor("a pings b", async () =>
			(await agents[0]!.host.ping(ipOfB, { count: 1, timeoutSeconds: 1 })) ? true : undefined,
		);
	}, 60_000);

	it("down on one agent shows it offline to the others; up brings it back", async () => {
		const b = agents[1]!;
		const ipOfB = (await status(b.host)).overlay_address.split("/")[0]!;
		const down = await starling(b.host, ["down"]);
		expect(down.exitCode, down.stderr).toBe(0);
		expect((await b.host.exec("ip", ["-o", "link", "show"])).stdout).not.toMatch(/starling0/);
		await waitFor("a sees b offline", async () => {
			const s = await status(agents[0]!.host);
			const peer = s.peers?.find((p) => p.overlay_ip === ipOfB);
			return peer && !peer.peer_online ? true : undefined;
		});
		const up = await starling(b.host, ["up"]);
		expect(up.exitCode, up.stderr).toBe(0);
		await waitFor(
			"a sees b connected again",
			async () => {
				const s = await status(agents[0]!.host);
				return s.peers_connected === 2 ? true : undefined;
			},
			30_000,
		);
	}, 60_000);

	it("a peer deleted through the REST API disappears from the others' WireGuard", async () => {
		const c = await status(agents[2]!.host);
		const peers = (await api("GET", "/api/peers")).json as { id: string; ip: string }[];
		const target = peers.find(
			(p) => `${p.ip}/16` === c.overlay_address || c.overlay_address.startsWith(`${p.ip}/`),
		);
		expect(target).toBeDefined();
		const del = await api("DELETE", `/api/peers/${target!.id}`);
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
			(await status(agents[2]!.host)).state === "down" ? true : undefined,
		);
	}, 60_000);
});

interface PeerJson {
	name: string;
	overlay_ip: string;
	connection_state: string;
	path_type: string;
	remote_candidate_type: string;
	peer_online: boolean;
}

interface StatusJson {
	state: string;
	fqdn: string;
	wg_public_key: string;
	overlay_address: string;
	interface_type: string;
	peers_connected: number;
	peers_total: number;
	management: { connected: boolean };
	signal: { connected: boolean };
	peers?: PeerJson[];
}
