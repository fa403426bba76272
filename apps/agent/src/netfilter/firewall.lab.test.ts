// The inbound firewall against the real kernel: three hosts of a lab joined by a
// wireguard-go overlay ("st0", 100.64.0.0/24). The firewall runs on "db" only,
// through a Runner that executes inside that host.
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Host, Lab, type Lan, labSkipReason, startWireguardGo } from "@starling/lab";
import type { FirewallRule } from "@starling/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CommandError, type Runner } from "../system/exec.js";
import { Firewall, renderFirewallRules } from "./firewall.js";

const IFACE = "st0";
const NODE = process.execPath;
const TCP_PORTS = [5432, 5433, 22, 7000];
const UDP_PORT = 5353;

/** Runs commands inside `host`, with the contract of system/exec.ts's `run`. */
function labRunner(host: Host): Runner {
	return async (command, args, options = {}) => {
		const result = await host.exec(command, [...args], {
			input: options.input,
			timeoutMs: options.timeoutMs ?? 15_000,
			env: { LC_ALL: "C" },
			allowFailure: true,
		});
		const stdout = result.stdout.replace(/\n$/, "");
		const stderr = result.stderr.replace(/\n$/, "");
		if (result.exitCode !== 0 && !options.allowFailure) {
			const detail = stderr.split("\n")[0] || stdout.split("\n")[0] || `exit ${result.exitCode}`;
			throw new CommandError(
				`${command} ${args.join(" ")}: ${detail}`,
				command,
				result.exitCode,
				stderr,
			);
		}
		return { stdout, stderr, exitCode: result.exitCode };
	};
}

// Small Node programs run inside the hosts (there is no nc/socat here).
const SERVER = `
const net = require("net"), dgram = require("dgram");
let n = 0; const want = ${TCP_PORTS.length + 1};
const ready = () => { if (++n === want) console.log("listening"); };
for (const p of ${JSON.stringify(TCP_PORTS)})
	net.createServer((s) => { s.on("data", (d) => s.write(d)); s.on("error", () => {}); }).listen(p, "0.0.0.0", ready);
const u = dgram.createSocket("udp4");
u.on("message", (m, r) => u.send(m, r.port, r.address));
u.bind(${UDP_PORT}, "0.0.0.0", ready);
`;

/** Prints "open" when a TCP connection to host:port echoes, else "closed" or "timeout". */
const tcpCheck = (address: string, port: number, timeoutMs: number) => `
const s = require("net").connect(${port}, ${JSON.stringify(address)});
const t = setTimeout(() => { console.log("timeout"); process.exit(0); }, ${timeoutMs});
s.on("connect", () => s.write("x"));
s.on("data", () => { console.log("open"); process.exit(0); });
s.on("error", (e) => { console.log("closed " + e.code); process.exit(0); });
`;

const udpCheck = (address: string, port: number, timeoutMs: number) => `
const u = require("dgram").createSocket("udp4");
u.on("message", () => { console.log("open"); process.exit(0); });
setTimeout(() => { console.log("timeout"); process.exit(0); }, ${timeoutMs});
u.send("x", ${port}, ${JSON.stringify(address)});
`;

/** Opens a new TCP connection every `everyMs` for `forMs`; counts the ones that got through. */
const tcpProbeLoop = (address: string, port: number, forMs: number, everyMs: number) => `
const net = require("net");
let attempts = 0, opened = 0, pending = 0;
const started = Date.now();
const tick = setInterval(() => {
	if (Date.now() - started > ${forMs}) { clearInterval(tick); return; }
	attempts++; pending++;
	const s = net.connect(${port}, ${JSON.stringify(address)});
	let done = false;
	const finish = (ok) => { if (done) return; done = true; pending--; if (ok) opened++; s.destroy(); };
	s.on("connect", () => finish(true));
	s.on("error", () => finish(false));
	setTimeout(() => finish(false), 400);
}, ${everyMs});
const end = setInterval(() => {
	if (Date.now() - started > ${forMs} && pending === 0) { clearInterval(end); console.log(JSON.stringify({ attempts, opened })); }
}, 20);
`;

/** One long-lived connection: writes every 100 ms and prints how many echoes came back. */
const longConnection = (address: string, port: number) => `
const s = require("net").connect(${port}, ${JSON.stringify(address)});
let echoes = 0;
s.on("connect", () => { console.log("connected"); setInterval(() => s.write("x"), 100); });
s.on("data", (d) => { echoes += d.length; console.log("echoes " + echoes); });
s.on("error", (e) => console.log("error " + e.code));
`;

interface Node {
	host: Host;
	overlay: string;
	publicKey: string;
}

describe.skipIf(labSkipReason)("inbound firewall with real nftables (lab)", () => {
	let lab: Lab;
	let lan: Lan;
	let db: Node;
	let a: Node;
	let b: Node;
	let firewall: Firewall;
	let dbRunner: Runner;

	const allowA5432: FirewallRule[] = [];

	async function addNode(name: string, overlay: string): Promise<Node> {
		const host = await lab.host(name, { lan });
		const privateKey = (await host.exec("wg", ["genkey"])).stdout.trim();
		const publicKey = (
			await host.exec("wg", ["pubkey"], { input: `${privateKey}\n` })
		).stdout.trim();
		const keyFile = join(host.stateDir, "wg.key");
		writeFileSync(keyFile, `${privateKey}\n`, { mode: 0o600 });
		chmodSync(keyFile, 0o600);
		await startWireguardGo(host, IFACE);
		await host.exec("wg", [
			"set",
			IFACE,
			"private-key",
			"/var/lib/starling/wg.key",
			"listen-port",
			"51820",
		]);
		await host.exec("ip", ["address", "add", `${overlay}/24`, "dev", IFACE]);
		await host.exec("ip", ["link", "set", IFACE, "mtu", "1280", "up"]);
		return { host, overlay, publicKey };
	}

	async function connectAll(nodes: Node[]): Promise<void> {
		for (const n of nodes) {
			for (const peer of nodes) {
				if (peer === n) continue;
				await n.host.exec("wg", [
					"set",
					IFACE,
					"peer",
					peer.publicKey,
					"allowed-ips",
					`${peer.overlay}/32`,
					"endpoint",
					`${peer.host.address}:51820`,
				]);
			}
		}
	}

	async function tcp(from: Node, to: string, port: number, timeoutMs = 800): Promise<string> {
		const r = await from.host.exec(NODE, ["-e", tcpCheck(to, port, timeoutMs)]);
		return r.stdout.trim();
	}

	async function udp(from: Node, to: string, port: number, timeoutMs = 800): Promise<string> {
		const r = await from.host.exec(NODE, ["-e", udpCheck(to, port, timeoutMs)]);
		return r.stdout.trim();
	}

	const ping = (from: Node, to: string) => from.host.ping(to, { count: 1, timeoutSeconds: 1 });

	async function tables(): Promise<string[]> {
		const r = await db.host.exec("nft", ["list", "tables"]);
		return r.stdout.trim().split("\n").filter(Boolean).sort();
	}

	beforeAll(async () => {
		lab = await Lab.create("fwlab");
		lan = await lab.lan("lan", "198.18.60.0/24");
		db = await addNode("db", "100.64.0.1");
		a = await addNode("a", "100.64.0.2");
		b = await addNode("b", "100.64.0.3");
		await connectAll([db, a, b]);
		for (const n of [db, a, b]) {
			const server = n.host.spawn(NODE, ["-e", SERVER], { name: `server-${n.host.name}` });
			await server.waitForOutput(/listening/, 10_000);
		}
		// The overlay works before any firewall.
		for (const [from, to] of [
			[a, db],
			[b, db],
			[db, a],
			[db, b],
		] as const) {
			const deadline = Date.now() + 10_000;
			while (!(await ping(from, to.overlay))) {
				if (Date.now() > deadline) throw new Error(`${from.host.name} → ${to.host.name}: no ping`);
			}
		}
		allowA5432.push({
			source: `${a.overlay}/32`,
			protocol: "tcp",
			ports: [{ start: 5432, end: 5432 }],
			policyId: "web-to-db",
		});
		dbRunner = labRunner(db.host);
		firewall = new Firewall(dbRunner, { interfaceName: IFACE });
	}, 90_000);

	afterAll(async () => {
		await lab?.destroy();
	}, 60_000);

	it("probe: usable as root; one line why when nftables refuses us", async () => {
		expect(await Firewall.probe(dbRunner)).toBeUndefined();
		// The same nft in a user namespace without privileges over this network namespace.
		const unprivileged: Runner = (command, args, options) =>
			dbRunner("unshare", ["--user", "--", command, ...args], options);
		const reason = await Firewall.probe(unprivileged);
		expect(reason).toMatch(/Operation not permitted/);
		expect(reason!.split("\n")).toHaveLength(1);
	});

	it("default deny: with no rules nothing from the overlay gets in, the LAN is untouched, our own connections work", async () => {
		await firewall.apply([]);
		expect(await tables()).toContain("table inet starling-firewall");
		expect(await tcp(a, db.overlay, 5432)).toBe("timeout");
		expect(await ping(a, db.overlay)).toBe(false);
		expect(await udp(a, db.overlay, UDP_PORT)).toBe("timeout");
		// Not from the overlay interface: not our business.
		expect(await tcp(a, db.host.address, 5432)).toBe("open");
		expect(await ping(a, db.host.address)).toBe(true);
		// Replies to connections db opens itself pass (conntrack), outbound is free.
		expect(await tcp(db, a.overlay, 7000)).toBe("open");
		expect(await ping(db, b.overlay)).toBe(true);
		expect(await udp(db, a.overlay, UDP_PORT)).toBe("open");
	}, 30_000);

	it("TCP 5432 from a only: a connects to 5432; not to 22, not ICMP; b gets nothing; db still reaches out", async () => {
		await firewall.apply(allowA5432);
		expect(firewall.ruleCount).toBe(1);
		expect(await tcp(a, db.overlay, 5432)).toBe("open");
		expect(await tcp(a, db.overlay, 22)).toBe("timeout");
		expect(await tcp(a, db.overlay, 5433)).toBe("timeout");
		expect(await ping(a, db.overlay)).toBe(false);
		expect(await udp(a, db.overlay, UDP_PORT)).toBe("timeout");
		expect(await tcp(b, db.overlay, 5432)).toBe("timeout");
		expect(await tcp(b, db.overlay, 22)).toBe("timeout");
		expect(await ping(b, db.overlay)).toBe(false);
		// db → a and db → b: replies come back.
		expect(await tcp(db, a.overlay, 7000)).toBe("open");
		expect(await tcp(db, b.overlay, 22)).toBe("open");
		expect(await ping(db, a.overlay)).toBe(true);
	}, 30_000);

	it("udp, icmp, port ranges and 'all' each allow what they say", async () => {
		await firewall.apply([
			...allowA5432,
			{
				source: `${a.overlay}/32`,
				protocol: "udp",
				ports: [{ start: 5300, end: 5400 }],
				policyId: "",
			},
			{ source: `${b.overlay}/32`, protocol: "icmp", ports: [], policyId: "" },
			{
				source: `${b.overlay}/32`,
				protocol: "tcp",
				ports: [{ start: 5433, end: 6000 }],
				policyId: "",
			},
		]);
		expect(await udp(a, db.overlay, UDP_PORT)).toBe("open");
		expect(await ping(a, db.overlay)).toBe(false);
		expect(await ping(b, db.overlay)).toBe(true);
		expect(await tcp(b, db.overlay, 5433)).toBe("open");
		expect(await tcp(b, db.overlay, 5432)).toBe("timeout");
		expect(await udp(b, db.overlay, UDP_PORT)).toBe("timeout");
		await firewall.apply([{ source: "100.64.0.0/24", protocol: "all", ports: [], policyId: "" }]);
		expect(await tcp(b, db.overlay, 22)).toBe("open");
		expect(await ping(a, db.overlay)).toBe(true);
		expect(await udp(b, db.overlay, UDP_PORT)).toBe("open");
	}, 30_000);

	it("an established connection stops when its rule goes, and resumes when it comes back", async () => {
		await firewall.apply(allowA5432);
		const conn = a.host.spawn(NODE, ["-e", longConnection(db.overlay, 5432)], {
			name: "long-connection",
		});
		await conn.waitForOutput(/echoes 3\b/, 5_000);
		const echoes = () => Number(/echoes (\d+)\s*$/.exec(conn.output())?.[1] ?? 0);
		// Same rules for b only: a's open connection is now judged like a new one.
		await firewall.apply([{ ...allowA5432[0]!, source: `${b.overlay}/32` }]);
		await new Promise((r) => setTimeout(r, 300));
		const frozen = echoes();
		await new Promise((r) => setTimeout(r, 1_500));
		expect(echoes()).toBe(frozen);
		await firewall.apply(allowA5432);
		const deadline = Date.now() + 10_000;
		while (echoes() <= frozen) {
			if (Date.now() > deadline) throw new Error(`no echo after re-allowing: ${conn.output()}`);
			await new Promise((r) => setTimeout(r, 100));
		}
		await conn.kill("SIGKILL");
	}, 30_000);

	it("updates are atomic: under 40 rule changes, never a moment open for b:22 nor closed for a:5432", async () => {
		await firewall.apply(allowA5432);
		const variants: FirewallRule[][] = [
			allowA5432,
			[
				...allowA5432,
				{
					source: `${b.overlay}/32`,
					protocol: "tcp",
					ports: [{ start: 5433, end: 5433 }],
					policyId: "",
				},
			],
			[...allowA5432, { source: `${b.overlay}/32`, protocol: "icmp", ports: [], policyId: "" }],
		];
		const forMs = 4_000;
		const probes = Promise.all([
			b.host.exec(NODE, ["-e", tcpProbeLoop(db.overlay, 22, forMs, 2)], {
				timeoutMs: forMs + 10_000,
			}),
			a.host.exec(NODE, ["-e", tcpProbeLoop(db.overlay, 5432, forMs, 5)], {
				timeoutMs: forMs + 10_000,
			}),
		]);
		let updates = 0;
		const started = Date.now();
		// Leave the probes some time to start before the first change.
		await new Promise((r) => setTimeout(r, 300));
		while (Date.now() - started < forMs - 300 && updates < 40) {
			await firewall.apply(variants[(updates % (variants.length - 1)) + 1]!);
			await firewall.apply(variants[0]!);
			updates += 2;
		}
		const [never, always] = (await probes).map(
			(r) => JSON.parse(r.stdout) as { attempts: number; opened: number },
		);
		console.log(
			`atomic updates: ${updates} rule changes in ${Date.now() - started} ms; b→db:22 ${never!.opened}/${never!.attempts} opened; a→db:5432 ${always!.opened}/${always!.attempts} opened`,
		);
		expect(updates).toBeGreaterThanOrEqual(10);
		expect(never!.attempts).toBeGreaterThan(300);
		expect(never!.opened).toBe(0);
		expect(always!.attempts).toBeGreaterThan(100);
		expect(always!.opened).toBe(always!.attempts);
	}, 40_000);

	it("the probe sees a gap when an update is not one transaction (control for the test above)", async () => {
		await firewall.apply(allowA5432);
		const forMs = 3_000;
		const probe = b.host.exec(NODE, ["-e", tcpProbeLoop(db.overlay, 22, forMs, 2)], {
			timeoutMs: forMs + 10_000,
		});
		await new Promise((r) => setTimeout(r, 300));
		const started = Date.now();
		let updates = 0;
		const script = renderFirewallRules(IFACE, allowA5432);
		while (Date.now() - started < forMs - 500) {
			// Delete, then create: two transactions, with a moment in between without the table.
			await dbRunner("nft", ["delete", "table", "inet", "starling-firewall"]);
			await dbRunner("nft", ["-f", "-"], { input: script });
			updates += 1;
		}
		const result = JSON.parse((await probe).stdout) as { attempts: number; opened: number };
		console.log(
			`non-atomic updates: ${updates} delete+create pairs; b→db:22 ${result.opened}/${result.attempts} opened`,
		);
		expect(result.opened).toBeGreaterThan(0);
		// The Firewall object's idea of what is installed is unchanged (same script).
		await firewall.apply(allowA5432);
	}, 30_000);

	it("remove() deletes only our table; the overlay is then open; apply() installs it again", async () => {
		await db.host.exec("nft", ["-f", "-"], {
			input: [
				"table inet someone-else {",
				"\tchain input { type filter hook input priority 10; policy accept; }",
				"}",
				"table ip starling-paths {",
				"\tchain output { type filter hook output priority raw; policy accept; }",
				"}",
				"",
			].join("\n"),
		});
		await firewall.apply(allowA5432);
		expect(await tables()).toEqual([
			"table inet someone-else",
			"table inet starling-firewall",
			"table ip starling-paths",
		]);
		await firewall.remove();
		expect(await tables()).toEqual(["table inet someone-else", "table ip starling-paths"]);
		expect(await tcp(b, db.overlay, 22)).toBe("open");
		// Removing again is fine.
		await firewall.remove();
		await firewall.apply(allowA5432);
		expect(await tcp(b, db.overlay, 22)).toBe("timeout");
		await firewall.remove();
	}, 30_000);
});
