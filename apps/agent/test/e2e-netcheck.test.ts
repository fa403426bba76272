// `starling netcheck` and `starling status --detail` behind real NATs: one
// agent on the "internet" and one behind each of an endpoint-independent, a
// symmetric and a UDP-blocking router, with coturn as the STUN server.
// coturn listens on two addresses of the control host, so it supports
// RFC 5780 and names its alternate address in every answer: management hands
// out ONE STUN URL and the agent still compares two server addresses.
import { Lab, labSkipReason, startStunServer } from "@starling/lab";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AgentHost, ControlPlane, type PeerJson, waitFor } from "./fixture.js";

interface NetcheckJson {
	source: string;
	udp_reachable: boolean | null;
	mapped_address: string;
	local_port: number;
	behind_nat: boolean | null;
	mapping: string;
	mapping_detail: string;
	port_preserved: boolean | null;
	stun: {
		server: string;
		address: string;
		origin: string;
		answered: boolean;
		latency_ms: number;
		mapped_address: string;
		error: string;
	}[];
	relays: {
		url: string;
		reachable: boolean;
		connect_ms: number;
		latency_ms: number;
		admitted: boolean | null;
		admission_error: string;
	}[];
	peers: {
		name: string;
		overlay_ip: string;
		path_type: string;
		connection_state: string;
		reason: string;
	}[];
}

type Kind = "public" | "eim" | "symmetric" | "udp-blocked";

describe.skipIf(labSkipReason)("netcheck", () => {
	let lab: Lab;
	let ctl: ControlPlane;
	/** coturn's second listening address on the control host. */
	let altAddress = "";
	const agents = new Map<Kind, AgentHost>();
	const wan = new Map<Kind, string>();
	const ips = new Map<Kind, string>();

	async function netcheck(agent: AgentHost, args: string[] = []): Promise<NetcheckJson> {
		const r = await agent.starling(["netcheck", "--json", ...args]);
		expect(r.exitCode, `${agent.name}: ${r.stderr}`).toBe(0);
		return JSON.parse(r.stdout) as NetcheckJson;
	}

	beforeAll(async () => {
		lab = await Lab.create("netck");
		const internet = await lab.lan("inet", "198.18.230.0/24");
		const ctlHost = await lab.host("ctl", { lan: internet });
		altAddress = "198.18.230.250";
		await ctlHost.exec("ip", ["addr", "add", `${altAddress}/24`, "dev", "eth0"]);
		ctl = new ControlPlane(ctlHost, { relay: true, stun: true });
		// The control plane piece by piece, for a coturn on two addresses (RFC 5780
		// needs two IPs; it then also listens on the alternate port, 3479).
		ctl.stun = await startStunServer(ctlHost, { addresses: [ctlHost.address, altAddress] });
		await ctl.startSignal();
		await ctl.startRelay();
		await ctl.startManagement();
		ctl.token = (await ctlHost.exec("cat", ["/var/lib/starling/admin-token"])).stdout.trim();

		agents.set("public", new AgentHost(await lab.host("public", { lan: internet })));
		wan.set("public", agents.get("public")!.host.address);
		let n = 231;
		for (const kind of ["eim", "symmetric", "udp-blocked"] as const) {
			const lan = await lab.lan(`l${n}`, `198.18.${n++}.0/24`);
			const router = await lab.router(`r-${kind}`, { wan: internet, lan, nat: kind });
			wan.set(kind, router.wanAddress);
			agents.set(kind, new AgentHost(await lab.host(kind, { lan, gateway: router })));
		}
		for (const a of agents.values()) await a.startDaemon();
		const key = await ctl.createSetupKey("netcheck");
		for (const [kind, a] of agents) {
			const r = await a.starling(["up", "--management-url", ctl.url, "--setup-key", key]);
			expect(r.exitCode, `${a.name}: ${r.stderr}`).toBe(0);
			ips.set(kind, await a.overlayIp());
		}
	}, 120_000);

	afterEach((context) => {
		if (context.task.result?.state === "fail")
			for (const a of agents.values()) console.error(a.logs(25));
	});

	afterAll(async () => {
		await lab?.destroy();
	}, 60_000);

	it("tells each NAT's mapping and UDP reachability apart, from one STUN URL", async () => {
		const [pub, eim, sym, blocked] = await Promise.all(
			(["public", "eim", "symmetric", "udp-blocked"] as const).map((k) => netcheck(agents.get(k)!)),
		);
		console.log(
			"netcheck:",
			JSON.stringify({ pub, eim, sym, blocked }, (k, v) => (k === "peers" ? undefined : v), 1),
		);
		for (const r of [pub!, eim!, sym!, blocked!]) {
			expect(r.source).toBe("daemon");
			// Management names one STUN server; coturn names its alternate itself.
			expect(r.stun[0]?.server).toBe(`stun:${ctl.host.address}:3478`);
			expect(r.relays.map((x) => x.url)).toEqual([ctl.relayUrl]);
			expect(r.relays[0]?.reachable).toBe(true);
			expect(r.relays[0]?.latency_ms).toBeGreaterThan(0);
		}

		// No NAT: mapped to its own address and port.
		expect(pub).toMatchObject({
			udp_reachable: true,
			behind_nat: false,
			mapping: "endpoint-independent",
			port_preserved: true,
			mapped_address: `${wan.get("public")}:${pub!.local_port}`,
		});
		expect(pub!.stun.map((s) => s.origin)).toEqual(["configured", "other-address"]);
		expect(pub!.stun[1]?.address).toBe(`${altAddress}:3479`);

		// Endpoint-independent NAT (masquerade keeps a free port).
		expect(eim).toMatchObject({
			udp_reachable: true,
			behind_nat: true,
			mapping: "endpoint-independent",
			port_preserved: true,
		});
		expect(eim!.mapped_address).toBe(`${wan.get("eim")}:${eim!.local_port}`);
		expect(eim!.stun.every((s) => s.answered && s.mapped_address === eim!.mapped_address)).toBe(
			true,
		);

		// Symmetric NAT (masquerade random): each destination gets its own port.
		expect(sym).toMatchObject({
			udp_reachable: true,
			behind_nat: true,
			mapping: "endpoint-dependent",
			port_preserved: false,
		});
		expect(sym!.mapped_address.startsWith(`${wan.get("symmetric")}:`)).toBe(true);
		expect(new Set(sym!.stun.map((s) => s.mapped_address)).size).toBe(2);

		// UDP blocked: no STUN answer, but the relay (TCP) is there.
		expect(blocked).toMatchObject({
			udp_reachable: false,
			mapping: "unknown",
			mapped_address: "",
			port_preserved: null,
		});
		expect(blocked!.stun[0]?.error).toMatch(/no answer/);
		expect(blocked!.relays[0]?.reachable).toBe(true);
		// The daemon's own relay connection is admitted with its token.
		await waitFor("udp-blocked's relay connection admitted", async () => {
			const r = await netcheck(agents.get("udp-blocked")!, ["--timeout", "300"]);
			return r.relays[0]?.admitted === true ? true : undefined;
		});

		// Without the daemon: the same verdict from flags.
		const local = await netcheck(agents.get("symmetric")!, [
			"--stun",
			`${ctl.host.address}:3478`,
			"--relay",
			ctl.relayUrl,
		]);
		expect(local).toMatchObject({ source: "cli", mapping: "endpoint-dependent", peers: [] });
		expect(local.relays[0]).toMatchObject({ reachable: true, admitted: null });
		const bad = await agents.get("eim")!.starling(["netcheck", "--stun", "turn:x:1"]);
		expect(bad.exitCode).toBe(2);
		expect(bad.stderr.trim().split("\n")).toHaveLength(1);
		const noDaemon = await agents.get("eim")!.starling(["netcheck", "--socket", "/tmp/none.sock"]);
		expect(noDaemon.exitCode).toBe(1);
		expect(noDaemon.stderr).toMatch(/^starling: the starling daemon is not running/);
	}, 60_000);

	it("says why a peer is relayed, and status --detail shows each path", async () => {
		const blocked = agents.get("udp-blocked")!;
		// ICE cannot get UDP out of the blocked host: its peers fall back to the
		// relay, and once an attempt has failed (8 s) the reason says so.
		const peer = await waitFor(
			"udp-blocked reports eim as relayed with the ICE failure",
			async () => {
				const r = await netcheck(blocked, ["--timeout", "300"]);
				const p = r.peers.find((x) => x.overlay_ip === ips.get("eim"));
				return p?.path_type === "relayed" && /ice/i.test(p.reason) ? p : undefined;
			},
			45_000,
		);
		expect(peer.reason).toMatch(/^relayed: /);
		const pubStatus = await waitFor("public has a direct path to eim", async () => {
			const s = await agents.get("public")!.status();
			const p = s.peers?.find((x) => x.overlay_ip === ips.get("eim"));
			return p?.path_type === "p2p" ? s : undefined;
		});
		// Peers on a direct path are not listed; relayed ones are.
		const pubNetcheck = await netcheck(agents.get("public")!, ["--timeout", "300"]);
		expect(pubNetcheck.peers.map((x) => x.overlay_ip)).not.toContain(ips.get("eim"));
		expect(pubNetcheck.peers.map((x) => x.overlay_ip)).toContain(ips.get("udp-blocked"));

		// status --detail, relayed: the same reason, the relay in use, a real latency.
		const relayed = await waitFor("a latency for the relayed peer", async () => {
			const s = await blocked.status();
			const p = s.peers?.find((x) => x.overlay_ip === ips.get("eim")) as DetailPeer | undefined;
			return p && p.latency_ms > 0 ? p : undefined;
		});
		expect(relayed).toMatchObject({
			path_type: "relayed",
			relay_url: ctl.relayUrl,
			remote_candidate_type: "relay",
		});
		expect(relayed.reason).toMatch(/ice/i);
		expect(relayed.bytes_received).toBeGreaterThan(0);
		expect(relayed.last_handshake).not.toBeNull();

		// status --detail, direct: candidate types and addresses on both ends.
		const direct = pubStatus.peers!.find((x) => x.overlay_ip === ips.get("eim")) as DetailPeer;
		expect(direct.local_endpoint.startsWith(`${wan.get("public")}:`)).toBe(true);
		expect(direct.remote_endpoint.startsWith(`${wan.get("eim")}:`)).toBe(true);
		expect(direct.local_candidate_type).toBe("host");
		expect(["srflx", "prflx"]).toContain(direct.remote_candidate_type);
		expect(direct.relay_url).toBe(ctl.relayUrl);
		const withLatency = await waitFor("a latency for the direct peer", async () => {
			const p = (await agents.get("public")!.status()).peers?.find(
				(x) => x.overlay_ip === ips.get("eim"),
			) as DetailPeer | undefined;
			return p && p.latency_ms > 0 ? p : undefined;
		});
		expect(withLatency.latency_ms).toBeLessThan(1_000);

		// The human form carries the same facts.
		const text = await agents.get("public")!.starling(["status", "--detail"]);
		expect(text.stdout).toMatch(/Connection type: P2P/);
		expect(text.stdout).toMatch(/Relay: Connected \(ws:/);
		const check = await blocked.starling(["netcheck"]);
		expect(check.stdout).toMatch(/UDP: not reachable/);
		expect(check.stdout).toMatch(/: relayed: ice/i);
		console.log(`starling netcheck (udp-blocked):\n${check.stdout}`);
		console.log(`starling status --detail (public):\n${text.stdout}`);

		// Down, the daemon has no map to take servers from: one line saying what to do.
		expect((await blocked.starling(["down"])).exitCode).toBe(0);
		const down = await blocked.starling(["netcheck"]);
		expect(down.exitCode).toBe(1);
		expect(down.stderr).toMatch(/not up.*--stun/);
	}, 90_000);
});

interface DetailPeer extends PeerJson {
	local_candidate_type: string;
	latency_ms: number;
	relay_url: string;
	bytes_received: number;
	last_handshake: string | null;
}
