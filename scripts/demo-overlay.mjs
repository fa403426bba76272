#!/usr/bin/env node
// A small Starling network in Linux network namespaces, to see it work in one
// command: a control plane (management + signal) in one namespace, two agents
// (alice and bob) in two more, all on a private LAN 198.18.50.0/24. Both
// agents `starling up` with a setup key, find each other through signal
// (ICE), and ping each other over WireGuard. Then everything is torn down
// (namespaces, processes, files); Ctrl-C tears it down too.
//
// Needs root (network namespaces) and a build (`pnpm build`). Not root: one
// line says the demo is skipped and it exits 0. `--never-fail`: a failure is
// reported in one line and the exit code is still 0 (used by `npm run
// quickstart`, so the control plane starts regardless). STARLING_SKIP_DEMO=1
// skips it.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { requireNode24 } from "./node24-check.mjs";

requireNode24("demo");

const started = Date.now();
const neverFail = process.argv.includes("--never-fail");
const say = (line) => process.stdout.write(`demo: ${line}\n`);
const libUrl = new URL("../bench/dist/lib-lab.js", import.meta.url);

async function main() {
	if (process.env.STARLING_SKIP_DEMO === "1") return say("skipped (STARLING_SKIP_DEMO=1)");
	if (process.platform !== "linux") return say("skipped: network namespaces need Linux");
	if (!existsSync(fileURLToPath(libUrl))) return say("skipped: not built yet (run pnpm build)");
	const L = await import(libUrl.href);
	if (L.labUnavailable) return say(`skipped: ${L.labUnavailable}`);

	const lab = await L.Lab.create("demo");
	try {
		const lan = await lab.lan("lan", "198.18.50.0/24");
		say(`a Starling network in network namespaces on ${lan.subnet}; it is removed at the end`);
		const ctl = await L.startLabControlPlane(await lab.host("control", { lan }));
		say(
			`control plane: management ${ctl.url}, signal http://${ctl.host.address}:${L.SIGNAL_PORT} (namespace ${ctl.host.netns})`,
		);
		const alice = await L.startAgent(lab, lan, "alice");
		const bob = await L.startAgent(lab, lan, "bob");
		for (const agent of [alice, bob]) {
			await agent.up(ctl);
			const s = await agent.status();
			say(
				`${agent.name.padEnd(5)} starling up --setup-key …  → ${s.fqdn} ${s.overlay_address} (${s.interface_type} WireGuard, namespace ${agent.host.netns})`,
			);
		}
		say("alice and bob negotiate a direct path through signal (ICE)…");
		// Wait for the WireGuard handshake as well, so the first ping goes straight through.
		const ready = (s) => (s.peers_connected === 1 && s.peers?.[0]?.last_handshake ? s : undefined);
		await L.waitFor("alice and bob connected", async () => ready(await alice.status()), 30_000);
		await L.waitFor("bob and alice connected", async () => ready(await bob.status()), 30_000);

		const text = (await alice.cli(["status", "--detail"])).stdout.split("\n");
		const summary = text.slice(text.findIndex((l) => l.startsWith("Daemon version")));
		const peer = text.slice(0, text.length - summary.length);
		const pick = (lines, re) => lines.filter((l) => re.test(l)).map((l) => `        ${l.trim()}`);
		say("`starling status --detail` on alice (excerpt):");
		const out = [
			...pick(summary, /^(Management|Signal|Overlay IP|Interface type|Peers count):/),
			"        Peer bob:",
			...pick(
				peer,
				/^\s*(Overlay IP|Status|Connection type|Remote endpoint|Last WireGuard handshake):/,
			).map((l) => `  ${l}`),
		];
		process.stdout.write(`${out.join("\n")}\n`);

		for (const [from, to] of [
			[alice, bob],
			[bob, alice],
		]) {
			const ip = await to.overlayIp();
			const rtts = [];
			for (let i = 0; i < 3; i++) {
				const rtt = await L.pingOnce(from.host, ip, 2);
				rtts.push(rtt === undefined ? "lost" : `${rtt} ms`);
				await L.sleep(200);
			}
			say(`${from.name.padEnd(5)} → ${to.name} (${ip}) over WireGuard: ${rtts.join(", ")}`);
		}
		await lab.destroy();
		say(
			`worked, in ${((Date.now() - started) / 1000).toFixed(1)} s; namespaces and processes removed (again: pnpm demo)`,
		);
	} catch (err) {
		const logs = process.env.STARLING_DEMO_VERBOSE === "1" ? `\n${lab.logs()}` : "";
		await lab.destroy();
		throw new Error(`${err instanceof Error ? err.message : String(err)}${logs}`);
	}
}

// Exit explicitly: the lab's teardown leaves a 5 s safety timer that would keep Node waiting.
main().then(
	() => process.exit(0),
	(err) => {
		const first = String(err instanceof Error ? err.message : err).split("\n")[0];
		say(`failed: ${first} (STARLING_DEMO_VERBOSE=1 pnpm demo shows the agents' logs)`);
		if (process.env.STARLING_DEMO_VERBOSE === "1") console.error(err);
		process.exit(neverFail ? 0 : 1);
	},
);
