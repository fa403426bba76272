// The routing peer against the real kernel: C (an overlay client) reaches H
// (a LAN host running no agent) through R, with real wireguard-go between C
// and R, R's real nftables and its real net.ipv4.ip_forward (per network
// namespace). R's served routes are driven through the same ForwardingConsumer
// the daemon wires into the engine; C's allowed IPs and kernel route are set
// by hand (the client side is not this file's subject). One lab serves every
// check; the last one starts the real daemon on R to see it clean up what a
// killed routing peer left.
import { statSync } from "node:fs";
import { join } from "node:path";
import { encodeKey, generateKeyPair } from "@starling/crypto";
import {
	type Host,
	Lab,
	type LabProcess,
	labSkipReason,
	type Router,
	startWireguardGo,
	waitFor,
} from "@starling/lab";
import { createLogger } from "@starling/log";
import type { ServedRoute } from "@starling/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AGENT_ENV, CLI, NODE } from "../../test/fixture.js";
import { CommandError, type Runner } from "../system/exec.js";
import {
	FORWARDING_RECORD_FILE,
	Forwarding,
	type ForwardingSysctl,
	fileForwardingRecord,
} from "./forwarding.js";
import { ForwardingConsumer } from "./forwarding-consumer.js";
import { RoutingTable } from "./forwarding-table.js";

const IFACE = "wt0";
const C_OVERLAY = "100.64.0.1";
const R_OVERLAY = "100.64.0.2";
const LAN_H = "198.18.61.0/24";

/** nft and friends inside `node`, with the contract of system/exec.ts's `run`. */
function labRunner(node: Router | Host): Runner {
	return async (command, args, options = {}) => {
		const r = await node.exec(command, [...args], {
			input: options.input,
			timeoutMs: options.timeoutMs ?? 15_000,
			env: { LC_ALL: "C" },
			allowFailure: true,
		});
		if (r.exitCode !== 0 && !options.allowFailure) {
			throw new CommandError(`${command}: ${r.stderr.trim()}`, command, r.exitCode, r.stderr);
		}
		return { stdout: r.stdout.replace(/\n$/, ""), stderr: r.stderr, exitCode: r.exitCode };
	};
}

/** ip_forward of `node`'s network namespace (the daemon itself uses /proc/sys directly, see the last test). */
function labSysctl(node: Router): ForwardingSysctl {
	return {
		read: async () => (await node.exec("cat", ["/proc/sys/net/ipv4/ip_forward"])).stdout.trim(),
		write: async (value) => {
			await node.exec("sysctl", ["-q", "-w", `net.ipv4.ip_forward=${value}`]);
		},
	};
}

const TCP_SERVER = `
const net = require("node:net");
for (const port of [80, 22]) net.createServer((s) => s.end(s.remoteAddress + "\\n")).listen(port, "0.0.0.0");
console.log("listening");
`;
const TCP_CLIENT = `
const s = require("node:net").connect(Number(process.argv[2]), process.argv[1]);
let out = "";
s.setTimeout(1500, () => { console.log("timeout"); process.exit(0); });
s.on("data", (d) => (out += d));
s.on("end", () => { console.log(out.trim()); process.exit(0); });
s.on("error", (e) => { console.log("error " + e.code); process.exit(0); });
`;

describe.skipIf(labSkipReason)("routing peer: forwarding and nftables (lab)", () => {
	let lab: Lab;
	let c: Host;
	let r: Router;
	let h: Host;
	let consumer: ForwardingConsumer;
	const logger = createLogger("served-routes-test", { level: "silent" });
	const procs: LabProcess[] = [];

	const served = (routes: ServedRoute[]) => {
		consumer.applyMap({ servedRoutes: routes } as never);
		return consumer.settled();
	};
	const openRoute = (masquerade: boolean): ServedRoute => ({
		routeId: "r1",
		network: LAN_H,
		masquerade,
		filtered: false,
		rules: [],
		sources: [`${C_OVERLAY}/32`],
	});
	const ipForward = async () =>
		(await r.exec("cat", ["/proc/sys/net/ipv4/ip_forward"])).stdout.trim();
	const tableExists = async () =>
		(await r.exec("nft", ["list", "table", "inet", "starling-routing"], { allowFailure: true }))
			.exitCode === 0;
	/** What H says the connection came from, "timeout", or "error …". */
	const tcp = async (port: number) =>
		(await c.exec(NODE, ["-e", TCP_CLIENT, h.address, String(port)])).stdout.trim();

	beforeAll(async () => {
		lab = await Lab.create("rfwd");
		const underlay = await lab.lan("ul", "198.18.60.0/24");
		const lanH = await lab.lan("lanh", LAN_H);
		c = await lab.host("c", { lan: underlay });
		// R is a lab router (two legs) with no NAT; the lab turns forwarding on in
		// routers, so it is turned off here: the agent has to turn it on.
		r = await lab.router("r", { wan: underlay, lan: lanH, nat: "none" });
		await r.exec("sysctl", ["-q", "-w", "net.ipv4.ip_forward=0"]);
		h = await lab.host("h", { lan: lanH });
		// H's return route to the overlay, for routes without masquerade.
		await h.exec("ip", ["route", "add", "100.64.0.0/10", "via", r.lanAddress]);

		const keys = { c: generateKeyPair(), r: generateKeyPair() };
		for (const [node, key, address] of [
			[c, keys.c, C_OVERLAY],
			[r, keys.r, R_OVERLAY],
		] as const) {
			procs.push(await startWireguardGo(node, IFACE));
			await node.exec("sh", ["-c", "umask 077; cat > /var/lib/starling/wg.key"], {
				input: encodeKey(key.privateKey),
			});
			await node.exec("wg", [
				"set",
				IFACE,
				"private-key",
				"/var/lib/starling/wg.key",
				"listen-port",
				"51820",
			]);
			await node.exec("ip", ["address", "add", `${address}/32`, "dev", IFACE]);
			await node.exec("ip", ["link", "set", IFACE, "mtu", "1280", "up"]);
		}
		// C: R is the routing peer for H's LAN (allowed IPs and a kernel route).
		await c.exec("wg", [
			"set",
			IFACE,
			"peer",
			encodeKey(keys.r.publicKey),
			"endpoint",
			`${r.wanAddress}:51820`,
			"allowed-ips",
			`${R_OVERLAY}/32,${LAN_H}`,
			"persistent-keepalive",
			"5",
		]);
		await c.exec("ip", ["route", "add", `${R_OVERLAY}/32`, "dev", IFACE]);
		await c.exec("ip", ["route", "add", LAN_H, "dev", IFACE]);
		await r.exec("wg", [
			"set",
			IFACE,
			"peer",
			encodeKey(keys.c.publicKey),
			"endpoint",
			`${c.address}:51820`,
			"allowed-ips",
			`${C_OVERLAY}/32`,
		]);
		await r.exec("ip", ["route", "add", `${C_OVERLAY}/32`, "dev", IFACE]);

		const server = h.spawn(NODE, ["-e", TCP_SERVER], { name: "tcp-server" });
		procs.push(server);
		await server.waitForOutput(/listening/, 10_000);

		consumer = new ForwardingConsumer(
			new RoutingTable(labRunner(r), IFACE),
			new Forwarding(labSysctl(r), fileForwardingRecord(r.stateDir)),
			logger,
		);
		expect(await c.ping(R_OVERLAY, { timeoutSeconds: 5 })).toBe(true);
	}, 60_000);

	afterAll(async () => {
		await lab?.destroy();
	});

	it("forwards nothing and owns nothing before a route is served", async () => {
		expect(await ipForward()).toBe("0");
		expect(await tableExists()).toBe(false);
		expect(await c.ping(h.address)).toBe(false);
	});

	it("open route with masquerade: ping and TCP pass, H sees R's LAN address", async () => {
		await served([openRoute(true)]);
		expect(await ipForward()).toBe("1");
		expect(await tableExists()).toBe(true);
		const record = join(r.stateDir, FORWARDING_RECORD_FILE);
		expect(statSync(record).mode & 0o777).toBe(0o600);
		// The lab's own table of R is left alone.
		expect((await r.exec("nft", ["list", "table", "ip", "starling_lab"])).exitCode).toBe(0);
		expect(await c.ping(h.address, { count: 3 })).toBe(true);
		expect(await tcp(80)).toBe(r.lanAddress);
		expect(await tcp(22)).toBe(r.lanAddress);
		expect(consumer.status()).toEqual([
			{ routeId: "r1", network: LAN_H, masquerade: true, filtered: false, ruleCount: 1, error: "" },
		]);
	});

	it("masquerade: false: H sees C's overlay address", async () => {
		await served([openRoute(false)]);
		expect(await tcp(80)).toBe(C_OVERLAY);
		expect(await c.ping(h.address)).toBe(true);
	});

	it("filtered route with a tcp/80 rule: 80 passes, 22 and ping are dropped at R's forward path", async () => {
		await served([
			{
				routeId: "r1",
				network: LAN_H,
				masquerade: true,
				filtered: true,
				rules: [
					{
						source: `${C_OVERLAY}/32`,
						protocol: "tcp",
						ports: [{ start: 80, end: 80 }],
						policyId: "p",
					},
				],
				sources: [],
			},
		]);
		expect(await tcp(80)).toBe(r.lanAddress);
		const before = await dropCount();
		expect(await tcp(22)).toBe("timeout");
		expect(await c.ping(h.address)).toBe(false);
		expect(await dropCount()).toBeGreaterThan(before);
	});

	async function dropCount(): Promise<number> {
		const out = (await r.exec("nft", ["list", "chain", "inet", "starling-routing", "from-overlay"]))
			.stdout;
		return Number(/counter packets (\d+)/.exec(out)?.[1] ?? Number.NaN);
	}

	it("the last route gone: the table is removed and ip_forward is 0 again", async () => {
		await served([]);
		expect(await tableExists()).toBe(false);
		expect(await ipForward()).toBe("0");
		expect(await c.ping(h.address)).toBe(false);
	});

	it("a machine that forwarded already keeps ip_forward 1 after the last route", async () => {
		await r.exec("sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"]);
		await served([openRoute(true)]);
		expect(await c.ping(h.address)).toBe(true);
		await served([]);
		expect(await ipForward()).toBe("1");
		expect(await tableExists()).toBe(false);
		await r.exec("sysctl", ["-q", "-w", "net.ipv4.ip_forward=0"]);
	});

	it("crash: a new daemon gives back forwarding and removes the table a killed one left", async () => {
		await served([openRoute(true)]);
		expect(await ipForward()).toBe("1");
		// The routing peer dies without cleaning up (its objects are just dropped,
		// as SIGKILL would): the kernel state and the record in /var/lib/starling stay.
		consumer = undefined as never;
		expect(await tableExists()).toBe(true);
		const daemon = r.spawn(NODE, [CLI, "service", "run"], { name: "agent-r", env: AGENT_ENV });
		procs.push(daemon);
		await waitFor("the daemon to clean up at start", async () =>
			(await ipForward()) === "0" && !(await tableExists()) ? true : undefined,
		);
		expect(statSyncOrUndefined(join(r.stateDir, FORWARDING_RECORD_FILE))).toBeUndefined();
		await daemon.kill();
	}, 30_000);
});

function statSyncOrUndefined(path: string) {
	try {
		return statSync(path);
	} catch {
		return undefined;
	}
}
