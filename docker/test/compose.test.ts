// The compose stack for real: images built from this repository (see
// scripts/ci/docker-test.sh), brought up on a docker network inside
// 198.18.0.0/15, two agents in lab namespaces joining through the published
// ports with a setup key made over REST, pinging each other over the overlay;
// then `docker-compose restart`, after which the tunnels still carry traffic,
// the agents re-sync and every bit of state (peer addresses, the admin token)
// is still there. Last, a third agent as users install it: scripts/install.sh
// and the release tarball on a Debian container that boots systemd, joined
// with `starling up`, restarted by systemd, upgraded in place, uninstalled.
// Everything is torn down even on failure.

import { randomBytes } from "node:crypto";
import { basename } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
	type AgentHost,
	agentsBehindRootUplink,
	waitFor,
	waitForPingsBothWays,
} from "../../apps/agent/test/fixture.js";
import { Lab, labUnavailable } from "../../packages/lab/dist/index.js";
import { parsePrometheusText } from "../../packages/service-runtime/dist/index.js";
import { ComposeProject, mustRun, type Run, run } from "./stack.js";

const PROJECT = "starlingci";
/** The docker network of the stack, the uplink between lab and root namespace, and the agents' LAN. */
const DOCKER_SUBNET = "198.18.200.0/24";
const UPLINK_SUBNET = "198.18.201.0/30";
const AGENT_LAN = "198.18.202.0/24";
/** The Debian container booting systemd (docker/test/systemd-host), on the stack's network. */
const SYSTEMD_HOST = `${PROJECT}-systemd-host`;
const SYSTEMD_HOST_IMAGE = "starling-ci/systemd-host:local";

const stack = new ComposeProject(PROJECT, [
	"docker/docker-compose.yml",
	"docker/test/compose.ci.yml",
]);

/** A command in the systemd container. */
function onSystemdHost(args: string[], timeoutMs?: number): Promise<Run> {
	return run("docker", ["exec", SYSTEMD_HOST, ...args], timeoutMs);
}

/** Waits until every container of the stack reports healthy; returns the seconds it took. */
async function waitHealthy(timeoutMs = 90_000): Promise<number> {
	const started = Date.now();
	await waitFor(
		"all containers healthy",
		async () => {
			const ids = (await stack.mustCompose(["ps", "-q"])).trim().split("\n").filter(Boolean);
			if (ids.length !== 5) return undefined;
			const r = await run("docker", ["inspect", "-f", "{{.State.Health.Status}}", ...ids]);
			const states = r.stdout.trim().split("\n");
			return states.every((s) => s === "healthy") ? true : undefined;
		},
		timeoutMs,
		500,
	);
	return (Date.now() - started) / 1000;
}

describe("docker compose stack with agents in lab namespaces", () => {
	let lab: Lab;
	let publicHost = "";
	let managementUrl = "";
	let adminToken = "";
	const agents: AgentHost[] = [];

	async function api(
		method: string,
		path: string,
		token: string,
		body?: unknown,
	): Promise<{ status: number; json: unknown }> {
		const res = await fetch(`${managementUrl}${path}`, {
			method,
			headers: { authorization: `Token ${token}`, "content-type": "application/json" },
			body: body === undefined ? undefined : JSON.stringify(body),
			signal: AbortSignal.timeout(10_000),
		});
		return { status: res.status, json: await res.json().catch(() => null) };
	}

	/** Scrapes a service's /metrics through its published port, as Prometheus would. */
	async function scrape(port: number): Promise<Map<string, number>> {
		const res = await fetch(`http://${publicHost}:${port}/metrics`, {
			signal: AbortSignal.timeout(10_000),
		});
		expect(res.status).toBe(200);
		return parsePrometheusText(await res.text());
	}

	async function peersByName(): Promise<Map<string, { ip: string; connected: boolean }>> {
		const r = await api("GET", "/api/peers", adminToken);
		expect(r.status).toBe(200);
		const peers = r.json as { name: string; ip: string; connected: boolean }[];
		return new Map(peers.map((p) => [p.name, { ip: p.ip, connected: p.connected }]));
	}

	beforeAll(async () => {
		if (labUnavailable)
			throw new Error(`the compose test needs the network lab: ${labUnavailable}`);
		// The lab's own sweep removes namespaces of a crashed run; this the stack.
		await run("docker", ["rm", "-f", SYSTEMD_HOST]);
		await stack.removeLeftovers({
			STARLING_PUBLIC_HOST: "cleanup.invalid",
			STARLING_RELAY_SECRET: "x",
		});

		lab = await Lab.create("dkr");
		const made = await agentsBehindRootUplink(lab, { lan: AGENT_LAN, uplinkSubnet: UPLINK_SUBNET });
		agents.push(...made.agents);
		publicHost = made.uplink.rootAddress;
		managementUrl = `http://${publicHost}:33073`;

		stack.writeEnv({
			STARLING_PUBLIC_HOST: publicHost,
			STARLING_RELAY_SECRET: randomBytes(24).toString("base64"),
			STARLING_BIND_ADDRESS: publicHost,
			STARLING_METRICS_BIND_ADDRESS: publicHost,
			STARLING_STUN_BIND_ADDRESS: publicHost,
			STARLING_CI_SUBNET: DOCKER_SUBNET,
			STARLING_IMAGE_PREFIX: process.env.STARLING_IMAGE_PREFIX ?? "starling-ci",
			STARLING_LOG_LEVEL: "info",
		});
		await stack.mustCompose(["up", "-d", "--no-build"]);
		const seconds = await waitHealthy();
		console.log(`stack healthy ${seconds.toFixed(1)} s after docker-compose up -d returned`);

		// The first admin token, shown once on management's stderr.
		adminToken = await stack.adminToken("management");
		for (const a of agents) await a.startDaemon();
	});

	afterEach(async (context) => {
		if (context.task.result?.state !== "fail") return;
		for (const a of agents) console.error(a.logs());
		console.error((await stack.compose(["logs", "--no-color", "--tail", "60"])).stdout);
		const journal = await onSystemdHost(["journalctl", "--no-pager", "-n", "80", "-u", "starling"]);
		if (journal.code === 0) console.error(journal.stdout);
	});

	afterAll(async () => {
		await run("docker", ["rm", "-f", SYSTEMD_HOST]);
		const down = await stack.down();
		await lab?.destroy();
		stack.removeWorkDir();
		expect(down.code, down.stderr).toBe(0);
		expect(await stack.leftContainers()).toBe("");
	});

	it("agents join with a setup key made over REST and ping each other over the overlay", async () => {
		const key = await api("POST", "/api/setup-keys", adminToken, {
			name: "compose-test",
			type: "reusable",
			expires_in: 3600,
			auto_groups: [],
			usage_limit: 0,
		});
		expect(key.status).toBe(200);
		const setupKey = (key.json as { key: string }).key;
		for (const a of agents) await a.up(managementUrl, setupKey);
		const [a, b] = agents as [AgentHost, AgentHost];
		const { ipA, ipB } = await waitForPingsBothWays(a, b, 30_000);
		for (const agent of agents) {
			const s = await agent.status();
			expect(s.management.connected).toBe(true);
			expect(s.signal.connected).toBe(true);
			expect(s.peers_connected).toBe(1);
		}
		const peers = await peersByName();
		expect(peers.size).toBe(2);
		expect([...peers.values()].map((p) => p.ip).sort()).toEqual([ipA, ipB].sort());
	});

	it("management, signal and relay serve health and metrics that follow the agents", async () => {
		for (const [port, path] of [
			[33073, "/healthz"],
			[33073, "/readyz"],
			[9090, "/readyz"],
			[9091, "/readyz"],
			[33080, "/readyz"],
		] as const) {
			const res = await fetch(`http://${publicHost}:${port}${path}`, {
				signal: AbortSignal.timeout(10_000),
			});
			expect(res.status, `${port}${path}`).toBe(200);
		}

		const management = await scrape(9090);
		expect(management.get("starling_management_connected_agents")).toBe(2);
		expect(management.get('starling_management_logins_total{result="registered"}')).toBe(2);
		expect(
			management.get(
				'starling_management_http_requests_total{method="POST",route="/api/setup-keys",status="200"}',
			),
		).toBe(1);
		expect(management.get('starling_management_sync_messages_total{kind="full"}')).toBeGreaterThan(
			1,
		);
		// Every registration, login and connect is a timed write transaction.
		expect(
			management.get('starling_management_store_transaction_seconds_count{operation="write"}'),
		).toBeGreaterThanOrEqual(2);

		const signal = await scrape(9091);
		expect(signal.get("starling_signal_connected_peers")).toBe(2);
		// The agents exchanged connection offers through signal to set up their tunnel.
		expect(signal.get("starling_signal_messages_routed_total")).toBeGreaterThan(0);
		expect(signal.get("starling_signal_routing_seconds_count")).toBeGreaterThan(0);

		// Each agent keeps one connection to the relay management names.
		for (const agent of agents) {
			await waitFor(`${agent.name} admitted by the relay`, async () => {
				const status = (await agent.status()) as { relay?: { connected: boolean } };
				return status.relay?.connected ? true : undefined;
			});
		}
		const relay = await scrape(33080);
		expect(relay.get('starling_relay_connections{state="ready"}')).toBe(2);
	});

	it("survives docker-compose restart: tunnels keep carrying traffic, agents re-sync, state is kept", async () => {
		const [a, b] = agents as [AgentHost, AgentHost];
		const ipsBefore = [await a.overlayIp(), await b.overlayIp()];
		const peersBefore = await peersByName();

		// Pings every 0.2 s from a to b for the whole restart.
		const pinger = a.host.spawn("ping", ["-n", "-i", "0.2", "-w", "45", ipsBefore[1]!], {
			name: "ping-during-restart",
		});
		await new Promise((r) => setTimeout(r, 2_000));
		const restartStarted = Date.now();
		await stack.mustCompose(["restart", "--timeout", "10"], 120_000);
		const restartSeconds = (Date.now() - restartStarted) / 1000;
		const healthySeconds = await waitHealthy();
		console.log(
			`docker-compose restart took ${restartSeconds.toFixed(1)} s, healthy ${healthySeconds.toFixed(1)} s later`,
		);

		// Agents re-sync: both say management and signal are connected again, and
		// management (which marks every peer disconnected when it starts) sees them connected.
		for (const agent of agents) {
			await waitFor(
				`${agent.name} reconnected to management and signal`,
				async () => {
					const s = await agent.status();
					return s.management.connected && s.signal.connected ? true : undefined;
				},
				60_000,
			);
		}
		const peersAfter = await waitFor(
			"management sees both peers connected",
			async () => {
				const peers = await peersByName();
				return [...peers.values()].every((p) => p.connected) ? peers : undefined;
			},
			60_000,
		);
		// Same peers, same addresses, and the same admin token still works (it just did).
		expect(peersAfter).toEqual(peersBefore);
		expect([await a.overlayIp(), await b.overlayIp()]).toEqual(ipsBefore);
		// The token was printed on the first start only: state was found, not recreated.
		const logs = await stack.mustCompose(["logs", "--no-color", "management"]);
		expect(logs.match(/Admin token \(shown once/g)).toHaveLength(1);

		await pinger.exited;
		const summary = /(\d+) packets transmitted, (\d+) received/.exec(pinger.output());
		expect(summary, pinger.output()).not.toBeNull();
		const sent = Number(summary![1]);
		const received = Number(summary![2]);
		console.log(`pings across the restart: ${received}/${sent} answered`);
		expect(sent).toBeGreaterThan(50);
		// WireGuard between the agents does not depend on the control plane.
		expect(received / sent).toBeGreaterThan(0.9);
		await waitFor("b pings a after the restart", async () =>
			(await b.host.ping(ipsBefore[0]!, { count: 1, timeoutSeconds: 1 })) ? true : undefined,
		);
	});

	it("mints a recovery admin token with docker-compose exec", async () => {
		const out = await stack.mustCompose([
			"exec",
			"-T",
			"management",
			"starling-management",
			"token",
			"create",
			"--name",
			"recovery",
		]);
		const token = out.trim();
		expect(token).toMatch(/^\S{20,}$/);
		expect(token).not.toBe(adminToken);
		expect((await api("GET", "/api/peers", token)).status).toBe(200);
		expect((await api("GET", "/api/peers", "not-a-token")).status).toBe(401);
	});

	it("an agent installed by install.sh under systemd joins with `starling up`, survives a service restart and an upgrade, and uninstalls", async () => {
		const tarball = process.env.STARLING_CI_AGENT_TARBALL;
		if (!tarball)
			throw new Error("STARLING_CI_AGENT_TARBALL is not set: run scripts/ci/docker-test.sh");
		// systemd as PID 1 needs SYS_ADMIN and the cgroup tree; the agent needs NET_ADMIN and a TUN device.
		await mustRun("docker", [
			"run",
			"-d",
			"--name",
			SYSTEMD_HOST,
			"--hostname",
			"server-1",
			"--cap-add",
			"SYS_ADMIN",
			"--cap-add",
			"NET_ADMIN",
			"--device",
			"/dev/net/tun",
			"--tmpfs",
			"/run",
			"--tmpfs",
			"/run/lock",
			"-v",
			"/sys/fs/cgroup:/sys/fs/cgroup:rw",
			"--network",
			`${PROJECT}_default`,
			SYSTEMD_HOST_IMAGE,
		]);
		const state = await waitFor(
			"systemd finished booting",
			async () => {
				const r = await onSystemdHost(["systemctl", "is-system-running"]);
				const s = r.stdout.trim();
				return s === "running" || s === "degraded" ? s : undefined;
			},
			60_000,
		);
		if (state === "degraded") {
			console.log(`systemd degraded: ${(await onSystemdHost(["systemctl", "--failed"])).stdout}`);
		}
		await mustRun("docker", ["cp", tarball, `${SYSTEMD_HOST}:/root/`]);
		await mustRun("docker", ["cp", "scripts/install.sh", `${SYSTEMD_HOST}:/root/install.sh`]);

		// The live-systemd branch of install.sh: packages, files, unit, and the service started.
		const install = await onSystemdHost(
			["sh", "/root/install.sh", `/root/${basename(tarball)}`],
			300_000,
		);
		expect(install.code, install.stdout + install.stderr).toBe(0);
		expect(install.stdout).toContain("starling.service is running");
		expect(
			(await onSystemdHost(["systemctl", "is-enabled", "starling.service"])).stdout.trim(),
		).toBe("enabled");

		const key = await api("POST", "/api/setup-keys", adminToken, {
			name: "systemd-host",
			type: "one-off",
			expires_in: 3600,
			auto_groups: [],
			usage_limit: 1,
		});
		expect(key.status).toBe(200);
		const up = await onSystemdHost(
			[
				"starling",
				"up",
				"--management-url",
				managementUrl,
				"--setup-key",
				(key.json as { key: string }).key,
			],
			60_000,
		);
		expect(up.code, up.stdout + up.stderr).toBe(0);

		const [a] = agents as [AgentHost];
		const ipA = await a.overlayIp();
		const serverStatus = async () =>
			JSON.parse((await onSystemdHost(["starling", "status", "--json"])).stdout) as {
				overlay_address: string;
				peers_connected: number;
				management: { connected: boolean };
			};
		const ipServer = (await serverStatus()).overlay_address.split("/")[0]!;
		const pingsBothWays = async (when: string) => {
			await waitFor(
				`the systemd host pings a ${when}`,
				async () =>
					(await onSystemdHost(["ping", "-n", "-c", "1", "-W", "1", ipA])).code === 0
						? true
						: undefined,
				30_000,
			);
			await waitFor(
				`a pings the systemd host ${when}`,
				async () =>
					(await a.host.ping(ipServer, { count: 1, timeoutSeconds: 1 })) ? true : undefined,
				30_000,
			);
		};
		/** A restarted daemon reconnects by itself: both lab agents, the same address, pings. */
		const backAsBefore = async (when: string) => {
			await waitFor(
				`the service is connected to both lab agents ${when}`,
				async () => {
					const s = await serverStatus().catch(() => undefined);
					return s?.management.connected && s.peers_connected === 2 ? true : undefined;
				},
				60_000,
			);
			expect((await serverStatus()).overlay_address.split("/")[0]).toBe(ipServer);
			await pingsBothWays(when);
		};
		await pingsBothWays("after up");
		expect((await peersByName()).get("server-1")?.ip).toBe(ipServer);

		// netcheck on the installed agent reaches the stack's STUN and relay through the published ports.
		const netcheck = await onSystemdHost(["starling", "netcheck", "--json"], 30_000);
		expect(netcheck.code, netcheck.stderr).toBe(0);
		const report = JSON.parse(netcheck.stdout) as {
			udp_reachable: boolean | null;
			mapping: string;
			mapping_detail: string;
			stun: { server: string; answered: boolean }[];
			relays: { url: string; reachable: boolean; admitted: boolean | null }[];
		};
		expect(report.udp_reachable).toBe(true);
		// Both STUN ports of the stack answer, so the mapping has a verdict: docker's
		// masquerade keeps one mapping per local socket.
		// Exactly the two configured ports (no RFC 5780 "other address": that would be coturn's
		// docker-internal one). Both answer, so the mapping gets a verdict. Which one depends on
		// the vantage point: from inside the compose network the published ports go through
		// docker's userland proxy, one per port, so the host looks mapped per destination.
		expect(report.stun.map((x) => [x.server, x.answered])).toEqual([
			[`stun:${publicHost}:3478`, true],
			[`stun:${publicHost}:3479`, true],
		]);
		expect(report.mapping, report.mapping_detail).not.toBe("unknown");
		// From outside docker (lab agent a, routed without NAT) the same two ports see one address.
		const fromLab = await a.starling(["netcheck", "--json"]);
		expect(fromLab.exitCode, fromLab.stderr).toBe(0);
		const labReport = JSON.parse(fromLab.stdout) as typeof report & { behind_nat: boolean };
		expect(labReport.stun.map((x) => x.answered)).toEqual([true, true]);
		expect([labReport.mapping, labReport.behind_nat]).toEqual(["endpoint-independent", false]);
		expect(report.relays.map((r) => [r.url, r.reachable, r.admitted])).toEqual([
			[`ws://${publicHost}:33080`, true, true],
		]);

		// systemd restarts the daemon: it comes back on its own, same address, no second `up`.
		await mustRun("docker", ["exec", SYSTEMD_HOST, "systemctl", "restart", "starling.service"]);
		await backAsBefore("after systemctl restart");

		// Running install.sh again is an upgrade: the running service restarts on the new files
		// and comes back as it was (same peer, same address), without another `up`.
		const pidBefore = (
			await onSystemdHost(["systemctl", "show", "-p", "MainPID", "--value", "starling"])
		).stdout.trim();
		const upgrade = await onSystemdHost(
			["sh", "/root/install.sh", `/root/${basename(tarball)}`],
			120_000,
		);
		expect(upgrade.code, upgrade.stdout + upgrade.stderr).toBe(0);
		expect(upgrade.stdout).toContain("upgraded to");
		const pidAfter = (
			await onSystemdHost(["systemctl", "show", "-p", "MainPID", "--value", "starling"])
		).stdout.trim();
		expect(pidAfter).not.toBe(pidBefore);
		expect((await onSystemdHost(["systemctl", "is-active", "starling"])).stdout.trim()).toBe(
			"active",
		);
		await backAsBefore("after the upgrade");

		// install.sh --uninstall while systemd runs the service: unit, interface,
		// nftables tables and files gone; the peer's key kept.
		const keyBefore = await mustRun("docker", [
			"exec",
			SYSTEMD_HOST,
			"cat",
			"/var/lib/starling/private.key",
		]);
		const uninstall = await onSystemdHost(["sh", "/root/install.sh", "--uninstall"], 60_000);
		expect(uninstall.code, uninstall.stdout + uninstall.stderr).toBe(0);
		expect((await onSystemdHost(["systemctl", "cat", "starling.service"])).code).not.toBe(0);
		expect((await onSystemdHost(["ip", "link", "show", "dev", "starling0"])).code).not.toBe(0);
		expect((await onSystemdHost(["nft", "list", "tables"])).stdout).not.toMatch(/starling/);
		expect((await onSystemdHost(["sh", "-c", "command -v starling"])).code).not.toBe(0);
		expect(
			await mustRun("docker", ["exec", SYSTEMD_HOST, "cat", "/var/lib/starling/private.key"]),
		).toBe(keyBefore);
	}, 420_000);
});
