// The engine's part of the inbound firewall: each map's rules reach the
// Firewall (allow-all unless management says its rules are authoritative).
import { generateKeyPair } from "@starling/crypto";
import { createLogger } from "@starling/log";
import type { FirewallRule, NetworkMap } from "@starling/proto";
import { describe, expect, it } from "vitest";
import type { IceAgent } from "../ice/ice-agent.js";
import { ALLOW_ALL_INBOUND, Firewall, renderFirewallRules } from "../netfilter/firewall.js";
import { FirewallConsumer } from "../netfilter/firewall-consumer.js";
import type { PortRewriter } from "../netfilter/port-rewrite.js";
import type { Runner } from "../system/exec.js";
import type { WireGuardDevice } from "../wireguard/device.js";
import { Engine } from "./engine.js";

const rules: FirewallRule[] = [
	{ source: "100.64.0.8/32", protocol: "tcp", ports: [{ start: 5432, end: 5432 }], policyId: "p" },
];

function map(serial: number, extra: Partial<NetworkMap>): NetworkMap {
	return {
		serial,
		self: undefined,
		peers: [],
		signal: undefined,
		stunServers: [],
		relay: undefined,
		firewallRules: [],
		dnsDomain: "starling.internal",
		network: "100.64.0.0/16",
		...extra,
	};
}

function setup(options: { firewall: boolean; failNft?: () => boolean }) {
	const scripts: string[] = [];
	const runner: Runner = async (_command, _args, opts = {}) => {
		if (options.failNft?.()) throw new Error("nft -f -: Error: Could not process rule");
		scripts.push(opts.input ?? "");
		return { stdout: "", stderr: "", exitCode: 0 };
	};
	const logger = createLogger("engine-test", { level: "silent" });
	const firewall = options.firewall
		? new FirewallConsumer(new Firewall(runner, { interfaceName: "st0" }), logger)
		: undefined;
	const engine = new Engine({
		keyPair: generateKeyPair(),
		interfaceName: "st0",
		wireguardPort: 51820,
		agentVersion: "test",
		device: {
			applyPeers: async () => [],
			dump: async () => ({ peers: [] }),
		} as unknown as WireGuardDevice,
		ice: { on: () => undefined, closeSession: async () => undefined } as unknown as IceAgent,
		portRewriter: {
			remove: () => undefined,
			apply: async () => undefined,
		} as unknown as PortRewriter,
		firewall,
		logger,
	});
	return { engine, scripts };
}

describe("Engine and the inbound firewall", () => {
	it("allows everything while management does not enforce, then follows its rules", async () => {
		const { engine, scripts } = setup({ firewall: true });
		expect(engine.firewallStatus()).toBe("enforcing (0 rules)");
		engine.applyMap(map(1, { firewallRules: rules }));
		await engine.settled();
		expect(scripts).toEqual([renderFirewallRules("st0", ALLOW_ALL_INBOUND)]);
		expect(engine.firewallStatus()).toBe("open (management sends no access policies)");

		engine.applyMap(map(2, { firewallRules: rules, firewallEnforced: true }));
		await engine.settled();
		expect(scripts[1]).toBe(renderFirewallRules("st0", rules));
		expect(engine.firewallStatus()).toBe("enforcing (1 rule)");

		// An unchanged map writes nothing; an empty authoritative list denies everything.
		engine.applyMap(map(3, { firewallRules: rules, firewallEnforced: true }));
		engine.applyMap(map(4, { firewallRules: [], firewallEnforced: true }));
		await engine.settled();
		expect(scripts).toHaveLength(3);
		expect(scripts[2]).toBe(renderFirewallRules("st0", []));
		expect(engine.firewallStatus()).toBe("enforcing (0 rules)");
		await engine.stop();
	});

	it("reports a failed update in status and keeps the previous rules' count", async () => {
		let fail = false;
		const { engine } = setup({ firewall: true, failNft: () => fail });
		engine.applyMap(map(1, { firewallRules: rules, firewallEnforced: true }));
		await engine.settled();
		fail = true;
		engine.applyMap(
			map(2, {
				firewallRules: [...rules, { ...rules[0]!, source: "100.64.0.9/32" }],
				firewallEnforced: true,
			}),
		);
		await engine.settled();
		expect(engine.firewallStatus()).toBe(
			"enforcing (1 rule); last update failed: nft -f -: Error: Could not process rule",
		);
		fail = false;
		engine.applyMap(map(3, { firewallRules: rules, firewallEnforced: true }));
		await engine.settled();
		expect(engine.firewallStatus()).toBe("enforcing (1 rule)");
		await engine.stop();
	});

	it("without a firewall (operator opted out) says so", async () => {
		const { engine } = setup({ firewall: false });
		engine.applyMap(map(1, { firewallRules: rules, firewallEnforced: true }));
		await engine.settled();
		expect(engine.firewallStatus()).toBe("disabled by operator");
		await engine.stop();
	});
});
