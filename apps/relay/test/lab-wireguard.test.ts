// The real target: two wireguard-go peers, each behind a NAT router that lets
// only TCP out (UDP blocked), ping each other through the relay running in a
// third host. Each peer's WireGuard endpoint for the other is a RelayUdpBridge
// port on 127.0.0.1, fed by a RelayClient (test/fixtures/relay-peer.mjs).
import { fileURLToPath } from "node:url";
import { type Host, Lab, labSkipReason, startWireguardGo } from "@starling/lab";
import { issueRelayToken } from "@starling/relay-protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { metricValue, SECRET } from "./helpers.js";

const mainJs = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const peerJs = fileURLToPath(new URL("./fixtures/relay-peer.mjs", import.meta.url));
const WG_PORT = 51820;

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 10_000) {
	const deadline = Date.now() + timeoutMs;
	while (!(await check())) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, 100));
	}
}

describe.skipIf(labSkipReason)("wireguard-go through the relay (lab)", () => {
	let lab: Lab;
	beforeAll(async () => {
		lab = await Lab.create("rlywg");
	}, 60_000);
	afterAll(() => lab?.destroy());

	it("pings across two UDP-blocked NATs through the relay in a third host", async () => {
		const inet = await lab.lan("inet", "198.18.70.0/24");
		const homeA = await lab.lan("homea", "198.18.71.0/24");
		const homeB = await lab.lan("homeb", "198.18.72.0/24");
		const routerA = await lab.router("ra", { wan: inet, lan: homeA, nat: "udp-blocked" });
		const routerB = await lab.router("rb", { wan: inet, lan: homeB, nat: "udp-blocked" });
		const relayHost = await lab.host("relay", { lan: inet });
		const a = await lab.host("a", { lan: homeA, gateway: routerA });
		const b = await lab.host("b", { lan: homeB, gateway: routerB });

		const relay = relayHost.spawn(process.execPath, [mainJs], {
			env: { STARLING_RELAY_LISTEN: "0.0.0.0:33080", STARLING_RELAY_SECRET: SECRET },
			name: "relay",
		});
		await relay.waitForOutput(/relay listening/, 10_000);
		const relayUrl = `ws://${relayHost.address}:33080`;

		const hosts: [Host, string][] = [
			[a, "100.64.70.1"],
			[b, "100.64.70.2"],
		];
		const keys: { priv: string; pub: string }[] = [];
		for (const [host] of hosts) {
			const priv = (await host.exec("wg", ["genkey"])).stdout.trim();
			const pub = (await host.exec("wg", ["pubkey"], { input: `${priv}\n` })).stdout.trim();
			keys.push({ priv, pub });
			// Ready once it says so: polling `wg show` can delete the socket it is about to listen on.
			await startWireguardGo(host, "wg0", { name: "wireguard-go" });
		}
		for (const [i, [host, address]] of hosts.entries()) {
			const other = hosts[1 - i]!;
			const mine = keys[i]!;
			const theirs = keys[1 - i]!;
			const token = issueRelayToken(
				SECRET,
				new Uint8Array(Buffer.from(mine.pub, "base64")),
				Date.now() + 3_600_000,
			);
			const peer = host.spawn(process.execPath, [peerJs], {
				env: {
					RELAY_URL: relayUrl,
					RELAY_TOKEN: token,
					WG_PORT: String(WG_PORT),
					PEER_KEY: theirs.pub,
				},
				name: "relay-peer",
			});
			await peer.waitForOutput(/"bridgePort":\d+/, 10_000);
			const bridgePort = Number(/"bridgePort":(\d+)/.exec(peer.output())?.[1]);
			await host.exec("sh", [
				"-c",
				'umask 077; printf "%s\\n" "$1" > /var/lib/starling/wg0.key',
				"sh",
				mine.priv,
			]);
			await host.exec("wg", [
				"set",
				"wg0",
				"listen-port",
				String(WG_PORT),
				"private-key",
				"/var/lib/starling/wg0.key",
				"peer",
				theirs.pub,
				"endpoint",
				`127.0.0.1:${bridgePort}`,
				"allowed-ips",
				`${other[1]}/32`,
				"persistent-keepalive",
				"25",
			]);
			await host.exec("ip", ["addr", "add", `${address}/24`, "dev", "wg0"]);
			await host.exec("ip", ["link", "set", "wg0", "mtu", "1280", "up"]);
		}

		// UDP cannot leave either home (the routers drop it), so only the relay's
		// TCP can carry the tunnel.
		const started = Date.now();
		await waitUntil("first ping through the relay", () =>
			a.ping("100.64.70.2", { count: 1, timeoutSeconds: 1 }),
		);
		const firstPingMs = Date.now() - started;
		expect(await a.ping("100.64.70.2", { count: 5, timeoutSeconds: 5 })).toBe(true);
		expect(await b.ping("100.64.70.1", { count: 5, timeoutSeconds: 5 })).toBe(true);
		const wg = (await a.exec("wg", ["show", "wg0", "latest-handshakes"])).stdout;
		expect(Number(wg.trim().split(/\s+/)[1])).toBeGreaterThan(0);

		const metrics = (
			await relayHost.exec(process.execPath, [
				"-e",
				"fetch('http://127.0.0.1:33080/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))",
			])
		).stdout;
		const forwarded = metricValue(metrics, "starling_relay_frames_forwarded_total");
		console.log(
			`lab: first ping through the relay after ${firstPingMs} ms; relay forwarded ${forwarded} frames`,
		);
		expect(forwarded).toBeGreaterThanOrEqual(20);
		expect(metricValue(metrics, 'starling_relay_connections{state="ready"}')).toBe(2);
	}, 90_000);
});
