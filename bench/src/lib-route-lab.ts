// The route client's lab, shared by `pnpm bench route-failover` and the lab
// test apps/agent/test/e2e-route-client.test.ts.
//
//   core 198.18.67.0/24   ctl (management, signal, relay, STUN)
//        |  gw (router: wan core, lan ul; plain forwarding)
//   ul   198.18.64.0/24   C (client), R1, R2, E (routers' wan legs; default via gw)
//   office 198.18.65.0/24 R1, R2 (lan legs), H (no agent; UDP echo)
//   inet 198.18.66.0/24   E (lan leg), X (no agent; UDP echo, "the internet")
//
// Real management, signal, relay, STUN, wireguard-go, ICE and kernel routing.
// The routes come from management's REST API (`/api/groups`, `/api/routes`:
// C alone in the group that receives them), so R1, R2 and E get their
// served routes and forward and masquerade with the agent's own code only
// (the lab sets no forwarding rules of its own on them). H answers TCP on
// ports 80 and 22 with the source address it sees, and has a return route
// to the overlay via R1 (for routes without masquerade).
// `routes: "map-filter"` is the earlier set-up, for a
// management without routes: C's daemon runs the agent's Agent with a map
// filter that adds the routes from /var/lib/starling/test-routes.json;
// there the routers serve nothing, so the lab masquerades on them itself.
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Lab } from "@starling/lab";
import { repoRoot } from "./lib-control-plane.js";
import {
	AGENT_ENV,
	CLI,
	type Host,
	LabAgent,
	type LabControlPlane,
	type LabProcess,
	NODE,
	type Router,
	startAgentIn,
	startLabControlPlane,
	waitFor,
} from "./lib-lab.js";

export const OFFICE = "198.18.65.0/24";
export const ECHO_PORT = 7007;
const AGENT_DIST = join(dirname(CLI), "..");
const LOG_DIST = join(repoRoot, "packages/log/dist/index.js");

/** C's daemon: the agent's Agent and daemon server, with the test's map filter (see above). */
const ROUTE_DAEMON = `
const [dist, logDist] = process.argv.slice(1);
const { readFileSync } = await import("node:fs");
const { Agent } = await import(dist + "/daemon/agent.js");
const { startDaemonServer } = await import(dist + "/daemon/daemon-server.js");
const { StateDir } = await import(dist + "/daemon/state-dir.js");
const { run } = await import(dist + "/system/exec.js");
const { createLogger } = await import(logDist);
const stateDir = new StateDir(process.env.STARLING_DATA_DIR);
stateDir.ensure();
stateDir.loadOrCreateKeyPair();
const logger = createLogger("agent");
const routesFile = process.env.STARLING_DATA_DIR + "/test-routes.json";
const mapFilter = (map) => {
	try { return { ...map, routes: JSON.parse(readFileSync(routesFile, "utf8")) }; } catch { return map; }
};
const agent = new Agent({ stateDir, runner: run, logger, mapFilter });
const daemon = await startDaemonServer(agent, process.env.STARLING_SOCKET, logger);
process.on("SIGTERM", () => void agent.shutdown().finally(() => daemon.close()).finally(() => process.exit(0)));
await agent.restore();
`;

/** Answers each datagram with its text plus the source address it came from. */
const ECHO_SERVER = `
const s = require("dgram").createSocket("udp4");
s.on("message", (m, r) => s.send(m.toString() + " " + r.address, r.port, r.address));
s.bind(${ECHO_PORT}, () => console.log("echo ready"));
`;

/** Sends "seq sentAt" every intervalMs; prints "reply seq sentAt receivedAt seenAs" per answer. */
const echoClient = (target: string, intervalMs: number) => `
const s = require("dgram").createSocket("udp4");
let seq = 0;
s.on("message", (m) => { const [seq, sentAt, seenAs] = m.toString().split(" "); console.log("reply " + seq + " " + sentAt + " " + Date.now() + " " + seenAs); });
setInterval(() => s.send(seq++ + " " + Date.now(), ${ECHO_PORT}, ${JSON.stringify(target)}), ${intervalMs});
`;

export interface EchoReply {
	seq: number;
	sentAt: number;
	receivedAt: number;
	/** The source address the echo server saw (the router's LAN address under masquerade). */
	seenAs: string;
}

export function parseReplies(output: string): EchoReply[] {
	const replies: EchoReply[] = [];
	for (const line of output.split("\n")) {
		const m = /^reply (\d+) (\d+) (\d+) (\S+)$/.exec(line.trim());
		if (m)
			replies.push({
				seq: Number(m[1]),
				sentAt: Number(m[2]),
				receivedAt: Number(m[3]),
				seenAs: m[4]!,
			});
	}
	return replies;
}

/** A lab router seen as a host for the agent helpers (its wan leg is its address). */
function routerAsHost(r: Router): Host {
	return {
		name: r.name,
		netns: r.netns,
		stateDir: r.stateDir,
		holderPid: r.holderPid,
		address: r.wanAddress,
		lan: r.wan,
		exec: (command, args, options) => r.exec(command, args, options),
		spawn: (command, args, options) => r.spawn(command, args, options),
		ping: (address, options) => r.ping(address, options),
		addRoute: (destination, via) => r.addRoute(destination, via),
	};
}

export interface RouteLab {
	ctl: LabControlPlane;
	gw: Router;
	c: LabAgent;
	r1: LabAgent;
	r2: LabAgent;
	e: LabAgent;
	r1Router: Router;
	r2Router: Router;
	eRouter: Router;
	h: Host;
	x: Host;
	keys: { r1: string; r2: string; e: string };
	/** Management's group "route-clients" (C alone); "" with the map-filter set-up. */
	clientsGroup: string;
}

/**
 * Masquerade from the overlay out of the router's lan leg: only for the
 * map-filter set-up, where management sends the routers no served routes.
 */
async function masquerade(r: Router): Promise<void> {
	await r.exec("nft", ["-f", "-"], {
		input: `table ip rcli-masq {
	chain post { type nat hook postrouting priority srcnat; policy accept; oifname "lan" ip saddr 100.64.0.0/10 masquerade; }
}`,
	});
}

/** Answers each TCP connection on ports 80 and 22 with the source address it came from. */
const TCP_SERVER = `
const net = require("net");
let ready = 0;
for (const port of [80, 22])
	net.createServer((s) => s.end(s.remoteAddress + "\\n")).listen(port, "0.0.0.0", () => { if (++ready === 2) console.log("tcp ready"); });
`;

/**
 * One TCP connection from `from` to `target`:`port`: "reply <address H saw>",
 * "timeout" (no answer within timeoutMs) or "error <code>".
 */
export async function tcpProbe(
	from: Host,
	target: string,
	port: number,
	timeoutMs = 3_000,
): Promise<string> {
	const script = `
const s = require("net").connect({ host: ${JSON.stringify(target)}, port: ${port} });
let data = "";
s.setTimeout(${timeoutMs}, () => { console.log("timeout"); process.exit(0); });
s.on("data", (d) => { data += d; });
s.on("end", () => { console.log("reply " + data.trim()); process.exit(0); });
s.on("error", (e) => { console.log("error " + e.code); process.exit(0); });
`;
	const r = await from.exec(NODE, ["-e", script], { timeoutMs: timeoutMs + 10_000 });
	return r.stdout.trim();
}

/** The routes C receives: the office network behind R1 (10) and R2 (20), and E as a skip_auto_apply exit node. */
export function clientRoutes(keys: RouteLab["keys"]): object[] {
	const route = (
		id: string,
		networkId: string,
		network: string,
		routerKey: string,
		metric: number,
		skipAutoApply: boolean,
	) => ({
		id,
		networkId,
		network,
		routerKey,
		metric,
		keepRoute: false,
		skipAutoApply,
		description: networkId === "office" ? "office LAN" : "exit",
		routeId: id.split(":")[0],
	});
	return [
		route("office:r1", "office", OFFICE, keys.r1, 10, false),
		route("office:r2", "office", OFFICE, keys.r2, 20, false),
		route("exit:e", "exit", "0.0.0.0/0", keys.e, 10, true),
	];
}

export type RouteSource = "management" | "map-filter";

export async function setUpRouteLab(
	lab: Lab,
	source: RouteSource = "management",
): Promise<RouteLab> {
	const core = await lab.lan("core", "198.18.67.0/24");
	const ul = await lab.lan("ul", "198.18.64.0/24");
	const office = await lab.lan("office", OFFICE);
	const inet = await lab.lan("inet", "198.18.66.0/24");
	const ctlHost = await lab.host("ctl", { lan: core });
	const gw = await lab.router("gw", { wan: core, lan: ul, nat: "none" });
	await ctlHost.addRoute(ul.subnet, gw.wanAddress);
	const ctl = await startLabControlPlane(ctlHost, { stun: true, relay: true });
	const r1Router = await lab.router("r1", { wan: ul, lan: office, nat: "none", wanGateway: gw });
	const r2Router = await lab.router("r2", { wan: ul, lan: office, nat: "none", wanGateway: gw });
	const eRouter = await lab.router("e", { wan: ul, lan: inet, nat: "none", wanGateway: gw });
	if (source === "map-filter") for (const r of [r1Router, r2Router, eRouter]) await masquerade(r);
	const cHost = await lab.host("c", { lan: ul, gateway: gw });
	const h = await lab.host("h", { lan: office });
	const x = await lab.host("x", { lan: inet });
	for (const echo of [h, x]) {
		const p = echo.spawn(NODE, ["-e", ECHO_SERVER], { name: `echo-${echo.name}` });
		await p.waitForOutput(/echo ready/, 10_000);
	}
	const tcp = h.spawn(NODE, ["-e", TCP_SERVER], { name: "tcp-h" });
	await tcp.waitForOutput(/tcp ready/, 10_000);
	// The way back into the overlay for routes without masquerade.
	await h.exec("ip", ["route", "add", "100.64.0.0/10", "via", r1Router.lanAddress]);
	const [r1, r2, e] = await Promise.all(
		[r1Router, r2Router, eRouter].map((r) => startAgentIn(routerAsHost(r))),
	);
	for (const a of [r1!, r2!, e!]) await a.up(ctl);
	const keys = {
		r1: (await r1!.status()).wg_public_key,
		r2: (await r2!.status()).wg_public_key,
		e: (await e!.status()).wg_public_key,
	};
	if (source === "map-filter") {
		writeFileSync(join(cHost.stateDir, "test-routes.json"), JSON.stringify(clientRoutes(keys)), {
			mode: 0o600,
		});
	}
	const c = new LabAgent(cHost, spawnRouteDaemon(cHost));
	await c.daemon.waitForOutput(/daemon listening/, 30_000);
	await c.up(ctl);
	const clientsGroup =
		source === "management" ? await createRoutes(ctl, { c, r1: r1!, r2: r2!, e: e! }) : "";
	return {
		ctl,
		gw,
		c,
		r1: r1!,
		r2: r2!,
		e: e!,
		r1Router,
		r2Router,
		eRouter,
		h,
		x,
		keys,
		clientsGroup,
	};
}

/** An agent's peer id in management (found by its overlay address). */
export async function peerIdOf(ctl: LabControlPlane, a: LabAgent): Promise<string> {
	const peers = (await ctl.api("GET", "/api/peers")).json as { id: string; ip: string }[];
	const ip = await a.overlayIp();
	const peer = peers.find((p) => p.ip === ip);
	if (!peer) throw new Error(`${a.name}: no peer with ip ${ip} in /api/peers`);
	return peer.id;
}

/** A REST call that must answer 200; its JSON. */
export async function apiOk<T = { id: string }>(
	ctl: LabControlPlane,
	method: string,
	path: string,
	body?: unknown,
): Promise<T> {
	const res = await ctl.api(method, path, body);
	if (res.status !== 200) throw new Error(`${method} ${path}: ${JSON.stringify(res)}`);
	return res.json as T;
}

/**
 * Through management's REST API: group "route-clients" (C only) receives the
 * office routes and the exit node. Returns the group's id.
 */
async function createRoutes(
	ctl: LabControlPlane,
	agents: { c: LabAgent; r1: LabAgent; r2: LabAgent; e: LabAgent },
): Promise<string> {
	const idOf = (a: LabAgent) => peerIdOf(ctl, a);
	const groupId = (
		await apiOk(ctl, "POST", "/api/groups", {
			name: "route-clients",
			peers: [await idOf(agents.c)],
		})
	).id;
	const routes = [
		{ networkId: "office", network: OFFICE, peer: await idOf(agents.r1), metric: 10, skip: false },
		{ networkId: "office", network: OFFICE, peer: await idOf(agents.r2), metric: 20, skip: false },
		{ networkId: "exit", network: "0.0.0.0/0", peer: await idOf(agents.e), metric: 10, skip: true },
	];
	for (const r of routes) {
		const res = await ctl.api("POST", "/api/routes", {
			description: r.networkId === "office" ? "office LAN" : "exit",
			network_id: r.networkId,
			enabled: true,
			peer: r.peer,
			network: r.network,
			metric: r.metric,
			masquerade: true,
			groups: [groupId],
			keep_route: false,
			skip_auto_apply: r.skip,
		});
		if (res.status !== 200) throw new Error(`POST /api/routes: ${JSON.stringify(res)}`);
	}
	return groupId;
}

export function spawnRouteDaemon(host: Host): LabProcess {
	return host.spawn(NODE, ["--input-type=module", "-e", ROUTE_DAEMON, AGENT_DIST, LOG_DIST], {
		name: `agent-${host.name}`,
		env: AGENT_ENV,
	});
}

/** Waits until C is on a direct path with each of the given agents. */
export async function waitDirect(rl: RouteLab, names: string[], timeoutMs = 60_000): Promise<void> {
	const ips = await Promise.all(names.map((n) => agentOf(rl, n).overlayIp()));
	await waitFor(
		`c on direct paths to ${names.join(", ")}`,
		async () => {
			const s = await rl.c.status();
			const ok = ips.every((ip) => s.peers?.find((p) => p.overlay_ip === ip)?.path_type === "p2p");
			return ok ? true : undefined;
		},
		timeoutMs,
		500,
	);
}

function agentOf(rl: RouteLab, name: string): LabAgent {
	const a = { r1: rl.r1, r2: rl.r2, e: rl.e }[name];
	if (!a) throw new Error(`no agent ${name}`);
	return a;
}

/** Everything on the router's uplink dropped, both ways (a cable pulled). */
export async function cutUplink(r: Router): Promise<void> {
	await r.exec("nft", ["-f", "-"], {
		input: `table inet rcli-cut {
	chain in { type filter hook input priority -10; policy accept; iifname "wan" drop; }
	chain out { type filter hook output priority -10; policy accept; oifname "wan" drop; }
	chain through { type filter hook forward priority -10; policy accept; iifname "wan" drop; oifname "wan" drop; }
}`,
	});
}

export async function restoreUplink(r: Router): Promise<void> {
	await r.exec("nft", ["delete", "table", "inet", "rcli-cut"], { allowFailure: true });
}

/** A UDP echo stream from C to `target` every `intervalMs` (kill it when done). */
export function startEcho(rl: RouteLab, target: string, intervalMs = 50): LabProcess {
	return rl.c.host.spawn(NODE, ["-e", echoClient(target, intervalMs)], { name: "echo-client" });
}

/** The first reply after `since` that came through the router with LAN address `via`. */
export async function firstReplyVia(
	stream: LabProcess,
	via: string,
	since: number,
	timeoutMs: number,
): Promise<EchoReply> {
	return waitFor(
		`a reply through ${via}`,
		async () => parseReplies(stream.output()).find((r) => r.sentAt >= since && r.seenAs === via),
		timeoutMs,
		50,
	);
}

/** The routes in C's table and the rules at the agent's priorities. */
export async function kernelState(host: Host): Promise<{ routes: string; rules: string }> {
	const routes = await host.exec("ip", ["-4", "route", "show", "table", "21332"], {
		allowFailure: true,
	});
	const rules = await host.exec("ip", ["-4", "rule", "show"]);
	return {
		routes: routes.stdout.trim(),
		rules: rules.stdout
			.split("\n")
			.filter((l) => /^2133[0-2]:/.test(l))
			.join("\n"),
	};
}

/** `wg show <iface> allowed-ips` of an agent: key -> allowed IPs. */
export async function allowedIps(host: Host): Promise<Map<string, string>> {
	const r = await host.exec("wg", ["show", "starling0", "allowed-ips"]);
	return new Map(
		r.stdout
			.trim()
			.split("\n")
			.filter(Boolean)
			.map((l) => {
				const [key, ...ips] = l.split(/\s+/);
				return [key!, ips.join(" ")];
			}),
	);
}

export { CLI };
