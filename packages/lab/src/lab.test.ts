import {
	existsSync,
	mkdirSync,
	readdirSync,
	readFileSync,
	readlinkSync,
	statSync,
	writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Host, Lab, type Lan, labSkipReason, type Router } from "./index.js";
import { type LabState, NETNS_DIR, ownProcessRef, processStart, STATE_DIR } from "./registry.js";

const node = process.execPath;

/** TCP server on PORT, UDP echo servers on PORT and PORT+1; each answers with the source it saw. */
const SERVER = `
const net = require("node:net"), dgram = require("node:dgram");
const port = Number(process.argv[1]);
net.createServer((s) => {
	const who = s.remoteAddress + ":" + s.remotePort;
	console.log("tcp from " + who);
	s.end(who + "\\n");
}).listen(port, "0.0.0.0", () => {
	let pending = 2;
	for (const p of [port, port + 1]) {
		const u = dgram.createSocket("udp4");
		u.on("message", (m, r) => {
			const who = r.address + ":" + r.port;
			console.log("udp from " + who + " to " + p);
			u.send(who, r.port, r.address);
		});
		u.bind(p, "0.0.0.0", () => { if (--pending === 0) console.log("ready"); });
	}
});`;

/** From one UDP socket (local port LOCAL) asks SERVER:PORT and SERVER:PORT+1, then TCP SERVER:PORT; prints what the server saw. */
const CLIENT = `
const net = require("node:net"), dgram = require("node:dgram");
const [server, portText, localText] = process.argv.slice(1);
const port = Number(portText);
const result = { udp: [null, null], tcp: null };
const udp = new Promise((resolve) => {
	const u = dgram.createSocket("udp4");
	let timer, deadline;
	const done = () => { clearInterval(timer); clearTimeout(deadline); u.close(); resolve(); };
	u.on("message", (m, r) => {
		result.udp[r.port - port] = m.toString();
		if (result.udp.every(Boolean)) done();
	});
	u.bind(Number(localText), "0.0.0.0", () => {
		const send = () => { u.send("?", port, server); u.send("?", port + 1, server); };
		send();
		timer = setInterval(send, 200);
		deadline = setTimeout(done, 1500);
	});
});
const tcp = new Promise((resolve) => {
	const s = net.connect({ host: server, port, timeout: 1500 });
	let data = "";
	s.on("data", (d) => { data += d; });
	s.on("end", () => { result.tcp = data.trim(); resolve(); });
	s.on("timeout", () => { s.destroy(); resolve(); });
	s.on("error", () => resolve());
});
Promise.all([udp, tcp]).then(() => { console.log(JSON.stringify(result)); process.exit(0); });`;

interface Seen {
	udp: [string | null, string | null];
	tcp: string | null;
}

async function probe(from: Host, to: string, port: number, localPort: number): Promise<Seen> {
	const { stdout } = await from.exec(node, ["-e", CLIENT, to, String(port), String(localPort)]);
	return JSON.parse(stdout) as Seen;
}

function labNamespaces(lab: string): string[] {
	return readdirSync(NETNS_DIR).filter((ns) => ns.startsWith(`stl-${lab}-`));
}

function rootLinks(): Set<string> {
	return new Set(readdirSync("/sys/class/net"));
}

/** pids of processes whose network namespace is one of `inodes`. */
function processesIn(inodes: Set<number>): number[] {
	const found: number[] = [];
	for (const entry of readdirSync("/proc")) {
		if (!/^[0-9]+$/.test(entry)) continue;
		try {
			const link = readlinkSync(`/proc/${entry}/ns/net`);
			const inode = Number(/\[([0-9]+)\]/.exec(link)?.[1]);
			if (inodes.has(inode) && processStart(Number(entry)) !== undefined) found.push(Number(entry));
		} catch {
			// exited, or a kernel thread
		}
	}
	return found;
}

async function eventually(check: () => boolean, timeoutMs = 3000): Promise<boolean> {
	const deadline = Date.now() + timeoutMs;
	while (Date.now() < deadline) {
		if (check()) return true;
		await new Promise((r) => setTimeout(r, 25));
	}
	return check();
}

describe.skipIf(labSkipReason)("lab: one LAN", () => {
	let lab: Lab;
	let a: Host;
	let b: Host;

	beforeAll(async () => {
		lab = await Lab.create("ltlan");
		const lan = await lab.lan("lan", "198.18.1.0/24");
		[a, b] = await Promise.all([lab.host("a", { lan }), lab.host("b", { lan })]);
	});
	afterAll(async () => {
		await lab?.destroy();
	});

	it("gives hosts addresses in the subnet, and they ping each other", async () => {
		expect([a.address, b.address].sort()).toEqual(["198.18.1.1", "198.18.1.2"]);
		expect(a.netns).toBe("stl-ltlan-a");
		expect(await a.ping(b.address)).toBe(true);
		expect(await b.ping(a.address, { count: 2 })).toBe(true);
		expect(await a.ping("198.18.1.99", { timeoutSeconds: 1 })).toBe(false);
		const { stdout } = await a.exec("ip", ["-o", "addr", "show", "dev", "eth0"]);
		expect(stdout).toContain("198.18.1.");
		expect(stdout).not.toContain("inet6"); // nothing outside 198.18.0.0/15
		// Each host has its own host name.
		expect((await a.exec("hostname", [])).stdout.trim()).toBe("a");
		expect((await b.exec("hostname", [])).stdout.trim()).toBe("b");
		await expect(lab.lan("bad", "10.0.0.0/24")).rejects.toThrow(/outside the lab range/);
		await expect(lab.host("c", { lan: a.lan, address: "198.18.1.1" })).rejects.toThrow(/in use/);
		await expect(Lab.create("Bad-Name")).rejects.toThrow(/invalid lab name/);
	});

	it("gives each host a private /run (wireguard-go with the same interface name in both) and its own stateDir", async () => {
		const env = { LOG_LEVEL: "verbose" };
		const wgA = a.spawn("wireguard-go", ["-f", "wg0"], { env });
		const wgB = b.spawn("wireguard-go", ["-f", "wg0"], { env });
		await Promise.all([wgA, wgB].map((p) => p.waitForOutput(/UAPI listener started/, 5000)));
		for (const host of [a, b]) {
			const show = await host.exec("wg", ["show", "wg0"]);
			expect(show.stdout).toContain("interface: wg0");
		}
		const sockets = await Promise.all(
			[a, b].map(
				async (h) => (await h.exec("stat", ["-c", "%d:%i", "/var/run/wireguard/wg0.sock"])).stdout,
			),
		);
		expect(sockets[0]).not.toBe(sockets[1]);
		expect(existsSync("/run/wireguard/wg0.sock")).toBe(false); // nothing in the real /run

		// A tunnel between them, keys kept in each host's /var/lib/starling.
		const keys: string[] = [];
		for (const host of [a, b]) {
			await host.exec("sh", ["-c", "umask 077; wg genkey > /var/lib/starling/wg.key"]);
			keys.push(
				(await host.exec("sh", ["-c", "wg pubkey < /var/lib/starling/wg.key"])).stdout.trim(),
			);
		}
		const pairs: [Host, string, string, Host][] = [
			[a, "100.64.0.1", keys[1]!, b],
			[b, "100.64.0.2", keys[0]!, a],
		];
		for (const [host, overlay, peerKey, peer] of pairs) {
			const peerOverlay = overlay === "100.64.0.1" ? "100.64.0.2" : "100.64.0.1";
			await host.exec("wg", [
				"set",
				"wg0",
				"listen-port",
				"51820",
				"private-key",
				"/var/lib/starling/wg.key",
				"peer",
				peerKey,
				"allowed-ips",
				`${peerOverlay}/32`,
				"endpoint",
				`${peer.address}:51820`,
			]);
			await host.exec("ip", ["addr", "add", `${overlay}/32`, "peer", peerOverlay, "dev", "wg0"]);
			await host.exec("ip", ["link", "set", "wg0", "up"]);
		}
		expect(await a.ping("100.64.0.2", { timeoutSeconds: 5 })).toBe(true);

		expect(existsSync(join(a.stateDir, "wg.key"))).toBe(true);
		expect(existsSync(join(b.stateDir, "wg.key"))).toBe(true);
		expect(a.stateDir).not.toBe(b.stateDir);
		expect(existsSync("/var/lib/starling/wg.key")).toBe(false);
		await a.exec("sh", ["-c", "echo only-a > /var/lib/starling/mark"]);
		expect((await b.exec("ls", ["/var/lib/starling"])).stdout).not.toContain("mark");

		await wgA.kill();
		expect(await wgA.exited).toBe(0);
		await expect(a.exec("wg", ["show", "wg0"])).rejects.toThrow(/a: wg show wg0/);
		expect((await b.exec("wg", ["show", "wg0"])).exitCode).toBe(0);
	});

	it("reports failed commands with the host and command", async () => {
		const failed = await a.exec("sh", ["-c", "echo oops >&2; exit 3"], { allowFailure: true });
		expect(failed).toEqual({ stdout: "", stderr: "oops\n", exitCode: 3 });
		await expect(a.exec("false", [])).rejects.toThrow(/^a: false/);
		const env = await a.exec("sh", ["-c", 'echo "$X"; cat'], { env: { X: "y" }, input: "in" });
		expect(env.stdout).toBe("y\nin");
		const sleeper = a.spawn("sh", ["-c", "echo started; exec sleep 30"], { name: "sleeper" });
		expect(await sleeper.waitForOutput(/start\w+/)).toBe("started");
		await expect(sleeper.waitForOutput(/never/, 100)).rejects.toThrow(/a\/sleeper did not print/);
		await sleeper.kill("SIGKILL");
		expect(await sleeper.exited).toBeNull();
		// A process whose daemon keeps its output pipe open still counts as exited when it exits.
		const parent = a.spawn("sh", ["-c", "sleep 30 & echo forked"]);
		const started = Date.now();
		expect(await parent.exited).toBe(0);
		await parent.kill();
		expect(Date.now() - started).toBeLessThan(2000);
		expect(parent.output()).toContain("forked");
	});
});

describe.skipIf(labSkipReason)("lab: routers and NAT", () => {
	let lab: Lab;
	let router: Router;
	let inet: Lan;
	let server: Host; // on the "internet" side
	let pc: Host; // behind the router

	beforeAll(async () => {
		lab = await Lab.create("ltnat");
		inet = await lab.lan("inet", "198.18.100.0/24");
		const home = await lab.lan("home", "198.18.101.0/24");
		router = await lab.router("r", {
			wan: inet,
			lan: home,
			nat: "none",
			lanAddress: "198.18.101.1",
		});
		[server, pc] = await Promise.all([
			lab.host("srv", { lan: inet, gateway: router }),
			lab.host("pc", { lan: home, gateway: router }),
		]);
		await Promise.all(
			[server, pc].map((h) =>
				h.spawn(node, ["-e", SERVER, "7000"], { name: "server" }).waitForOutput(/ready/),
			),
		);
	});
	afterAll(async () => {
		await lab?.destroy();
	});

	it('routes between two LANs with nat "none"', async () => {
		expect(router.wanAddress).toBe("198.18.100.1");
		expect(await pc.ping(server.address)).toBe(true);
		expect(await server.ping(pc.address)).toBe(true);
		const seen = await probe(pc, server.address, 7000, 40000);
		expect(seen.udp).toEqual([`${pc.address}:40000`, `${pc.address}:40000`]);
		expect(seen.tcp).toMatch(new RegExp(`^${pc.address.replaceAll(".", "\\.")}:`));
	});

	it('"eim" masquerades with one mapping for all destinations and drops unsolicited inbound', async () => {
		await router.setNat("eim");
		expect(router.nat).toBe("eim");
		const seen = await probe(pc, server.address, 7000, 40001);
		expect(seen.udp).toEqual([`${router.wanAddress}:40001`, `${router.wanAddress}:40001`]);
		expect(seen.tcp).toMatch(new RegExp(`^${router.wanAddress.replaceAll(".", "\\.")}:`));
		// From the wan side nothing new gets in, to the router or through it.
		expect(await server.ping(router.wanAddress, { timeoutSeconds: 1 })).toBe(false);
		expect(await server.ping(pc.address, { timeoutSeconds: 1 })).toBe(false);
		const inbound = await probe(server, pc.address, 7000, 40002);
		expect(inbound).toEqual({ udp: [null, null], tcp: null });
		expect(await pc.ping(server.address)).toBe(true);
	});

	it('"symmetric" maps each destination to its own port', async () => {
		await router.setNat("symmetric");
		const seen = await probe(pc, server.address, 7000, 40003);
		const [first, second] = seen.udp;
		expect(first?.startsWith(`${router.wanAddress}:`)).toBe(true);
		expect(second?.startsWith(`${router.wanAddress}:`)).toBe(true);
		expect(first).not.toBe(second);
		expect(await server.ping(pc.address, { timeoutSeconds: 1 })).toBe(false);
	});

	it('"udp-blocked" lets only TCP out; "masquerade-only" lets inbound in', async () => {
		await router.setNat("udp-blocked");
		const blocked = await probe(pc, server.address, 7000, 40004);
		expect(blocked.udp).toEqual([null, null]);
		expect(blocked.tcp).toMatch(new RegExp(`^${router.wanAddress.replaceAll(".", "\\.")}:`));

		await router.setNat("masquerade-only");
		expect(await server.ping(pc.address)).toBe(true);
		const seen = await probe(pc, server.address, 7000, 40005);
		expect(seen.udp[0]).toBe(`${router.wanAddress}:40005`);
	});

	it("nests NATs: a home router behind a carrier-grade NAT (wanGateway)", async () => {
		const isp = await lab.lan("isp", "198.18.102.0/24");
		const home2 = await lab.lan("home2", "198.18.103.0/24");
		const cgnat = await lab.router("cgnat", { wan: inet, lan: isp, nat: "eim" });
		const r2 = await lab.router("r2", { wan: isp, lan: home2, nat: "eim", wanGateway: cgnat });
		const pc2 = await lab.host("pc2", { lan: home2, gateway: r2 });
		const seen = await probe(pc2, server.address, 7000, 40007);
		expect(seen.udp).toEqual([`${cgnat.wanAddress}:40007`, `${cgnat.wanAddress}:40007`]);
	});

	it("forwards a port to a host behind the NAT", async () => {
		await router.setNat("eim");
		await router.forwardPort("udp", 7000, pc.address);
		await router.forwardPort("tcp", 7000, pc.address);
		const seen = await probe(server, router.wanAddress, 7000, 40006);
		expect(seen.udp[0]).toBe(`${server.address}:40006`);
		expect(seen.tcp).toMatch(new RegExp(`^${server.address.replaceAll(".", "\\.")}:`));
	});
});

describe.skipIf(labSkipReason)("lab: cleanup", () => {
	it("destroy() leaves no namespaces, links, processes or files, and is idempotent", async () => {
		const linksBefore = rootLinks();
		const lab = await Lab.create("ltdes");
		const inet = await lab.lan("inet", "198.18.110.0/24");
		const home = await lab.lan("home", "198.18.111.0/24");
		const router = await lab.router("r", { wan: inet, lan: home, nat: "eim" });
		const host = await lab.host("h", { lan: home, gateway: router });
		const spawned = host.spawn("sleep", ["300"]);
		// A daemon that detached from us, like wireguard-go started by the agent.
		const detached = Number(
			(await host.exec("sh", ["-c", "sleep 301 >/dev/null 2>&1 & echo $!"])).stdout.trim(),
		);
		const namespaces = labNamespaces("ltdes");
		expect(namespaces.sort()).toEqual([
			"stl-ltdes-h",
			"stl-ltdes-home",
			"stl-ltdes-inet",
			"stl-ltdes-r",
		]);
		const inodes = new Set(namespaces.map((ns) => statSync(join(NETNS_DIR, ns)).ino));
		const pids = processesIn(inodes);
		expect(pids).toContain(spawned.pid);
		expect(pids).toContain(detached);
		expect(pids.length).toBeGreaterThanOrEqual(4); // + holders of h and r
		expect(existsSync(join(STATE_DIR, "ltdes.json"))).toBe(true);
		expect(existsSync(host.stateDir)).toBe(true);

		await lab.destroy();
		expect(labNamespaces("ltdes")).toEqual([]);
		expect(await eventually(() => processesIn(inodes).length === 0)).toBe(true);
		for (const pid of pids) expect(processStart(pid)).toBeUndefined();
		expect(await spawned.exited).toBeNull();
		const newLinks = [...rootLinks()].filter((l) => !linksBefore.has(l));
		expect(newLinks.filter((l) => /^(p[0-9]+|eth0|wan|lan|br0)$/.test(l))).toEqual([]);
		expect(existsSync(join(STATE_DIR, "ltdes.json"))).toBe(false);
		expect(existsSync(lab.dir)).toBe(false);

		await lab.destroy();
		await expect(lab.host("x", { lan: home })).rejects.toThrow(/destroyed/);
	});

	it("Lab.create removes what a crashed run left and keeps live labs", async () => {
		// A crashed lab "ltold": owner dead, two namespaces, a process in one, and a recorded
		// holder whose namespace name is already gone.
		const dead = execa("true");
		const deadPid = dead.pid!;
		await dead;
		await execa("ip", ["netns", "add", "stl-ltold-a"]);
		await execa("ip", ["netns", "add", "stl-ltold-b"]);
		const inA = execa("ip", ["netns", "exec", "stl-ltold-a", "sleep", "300"], { reject: false });
		const escaped = execa("ip", ["netns", "exec", "stl-ltold-b", "sleep", "301"], {
			reject: false,
		});
		const isSleep = (pid: number) => {
			try {
				return readFileSync(`/proc/${pid}/comm`, "utf8") === "sleep\n";
			} catch {
				return false;
			}
		};
		// ip has entered the namespace and exec'd sleep
		expect(await eventually(() => isSleep(inA.pid!) && isSleep(escaped.pid!))).toBe(true);
		await execa("ip", ["netns", "delete", "stl-ltold-b"]);
		const oldDir = join(tmpdir(), "starling-lab", "ltold");
		mkdirSync(oldDir, { recursive: true });
		writeFileSync(join(oldDir, "junk"), "x");
		const stale: LabState = {
			version: 1,
			lab: "ltold",
			owner: { pid: deadPid, start: "1" },
			dir: oldDir,
			keepFiles: false,
			processes: [{ pid: escaped.pid!, start: processStart(escaped.pid!)! }],
			createdAt: new Date().toISOString(),
		};
		mkdirSync(STATE_DIR, { recursive: true });
		writeFileSync(join(STATE_DIR, "ltold.json"), JSON.stringify(stale));
		// A namespace with the prefix that no state file claims.
		await execa("ip", ["netns", "add", "stl-ltorph-x"]);
		// A live lab (owner: this process) must survive.
		const live: LabState = {
			...stale,
			lab: "ltlive",
			owner: ownProcessRef(),
			processes: [],
			dir: "/nonexistent",
		};
		writeFileSync(join(STATE_DIR, "ltlive.json"), JSON.stringify(live));
		await execa("ip", ["netns", "add", "stl-ltlive-a"]);

		try {
			const lab = await Lab.create("ltnew");
			expect(labNamespaces("ltold")).toEqual([]);
			expect(labNamespaces("ltorph")).toEqual([]);
			expect(labNamespaces("ltlive")).toEqual(["stl-ltlive-a"]);
			expect((await inA).signal).toBe("SIGKILL");
			expect((await escaped).signal).toBe("SIGKILL");
			expect(existsSync(join(STATE_DIR, "ltold.json"))).toBe(false);
			expect(existsSync(oldDir)).toBe(false);
			expect(existsSync(join(STATE_DIR, "ltlive.json"))).toBe(true);
			await expect(Lab.create("ltnew")).rejects.toThrow(/in use by this process/);
			await lab.destroy();
		} finally {
			await execa("ip", ["netns", "delete", "stl-ltlive-a"], { reject: false });
			await execa("rm", ["-f", join(STATE_DIR, "ltlive.json")]);
		}
	});
});
