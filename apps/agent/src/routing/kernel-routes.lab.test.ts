// Kernel routes and policy rules against the real kernel: one lab host with
// a LAN and a dummy "overlay" interface; the adapter runs `ip` inside it.
import { type Host, Lab, labSkipReason } from "@starling/lab";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CommandError, type Runner } from "../system/exec.js";
import { KernelRoutes, localNetworks, ROUTING_TABLE } from "./kernel-routes.js";

const IFACE = "st0";

function labRunner(host: Host): Runner {
	return async (command, args, options = {}) => {
		const result = await host.exec(command, [...args], {
			input: options.input,
			timeoutMs: options.timeoutMs ?? 15_000,
			env: { LC_ALL: "C" },
			allowFailure: true,
		});
		if (result.exitCode !== 0 && !options.allowFailure) {
			throw new CommandError(
				`${command} ${args.join(" ")}: ${result.stderr.split("\n")[0]}`,
				command,
				result.exitCode,
				result.stderr,
			);
		}
		return { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode };
	};
}

describe.skipIf(labSkipReason)("kernel routes with real ip route / ip rule (lab)", () => {
	let lab: Lab;
	let host: Host;
	let run: Runner;
	let routes: KernelRoutes;
	const routeGet = async (dst: string) =>
		(await host.exec("ip", ["-4", "route", "get", dst])).stdout.trim();

	beforeAll(async () => {
		lab = await Lab.create("rclikr");
		const lan = await lab.lan("lan", "198.18.61.0/24");
		host = await lab.host("c", { lan });
		run = labRunner(host);
		// No dummy module on this kernel: a tun device stands for the overlay interface.
		await host.exec("ip", ["tuntap", "add", "dev", IFACE, "mode", "tun"]);
		await host.exec("ip", ["addr", "add", "100.64.0.2/16", "dev", IFACE]);
		await host.exec("ip", ["link", "set", IFACE, "up"]);
		// The machine's own default route, which the exit route must not replace in main.
		await host.exec("ip", ["route", "replace", "default", "via", "198.18.61.254"]);
		routes = new KernelRoutes(run, { interfaceName: IFACE });
	}, 60_000);

	afterAll(async () => {
		await lab?.destroy();
	});

	it("lists the machine's own networks, not the overlay's", async () => {
		expect(await localNetworks(run, IFACE)).toEqual(["198.18.61.0/24"]);
	});

	it("routes a network into the overlay through its own table and rules, main untouched", async () => {
		const mainBefore = (await host.exec("ip", ["-4", "route", "show", "table", "main"])).stdout;
		await routes.apply({ routes: ["198.18.70.0/24"], bypass: ["198.18.61.1"] });
		expect(await routeGet("198.18.70.5")).toMatch(
			new RegExp(`dev ${IFACE} table ${ROUTING_TABLE}`),
		);
		// The machine's LAN and default stay on main.
		expect(await routeGet("198.18.61.9")).not.toMatch(IFACE);
		expect(await routeGet("198.18.200.1")).not.toMatch(IFACE);
		expect((await host.exec("ip", ["-4", "route", "show", "table", "main"])).stdout).toBe(
			mainBefore,
		);
		// No bypass rule without an exit route.
		expect((await routes.read()).bypass.size).toBe(0);
	});

	it("exit route: default through the overlay, bypassed addresses and the LAN stay on the underlay", async () => {
		await routes.apply({
			routes: ["0.0.0.0/0", "198.18.70.0/24"],
			bypass: ["198.18.200.1", "198.18.200.2"],
		});
		expect(await routeGet("8.8.8.8")).toMatch(new RegExp(`dev ${IFACE} table ${ROUTING_TABLE}`));
		expect(await routeGet("198.18.200.1")).not.toMatch(IFACE);
		expect(await routeGet("198.18.200.2")).not.toMatch(IFACE);
		expect(await routeGet("198.18.200.3")).toMatch(IFACE);
		expect(await routeGet("198.18.61.9")).not.toMatch(IFACE);
		expect(await routeGet("100.64.0.9")).toMatch(IFACE);
		// Changing the bypass set changes only the differing rules.
		await routes.apply({ routes: ["0.0.0.0/0"], bypass: ["198.18.200.2"] });
		const state = await routes.read();
		expect([...state.bypass]).toEqual(["198.18.200.2/32"]);
		expect([...state.routes]).toEqual(["0.0.0.0/0"]);
	});

	it("nothing wanted removes every route and rule; clear() removes them after a crash", async () => {
		await routes.apply({ routes: [], bypass: [] });
		let state = await routes.read();
		expect(state).toEqual({ routes: new Set(), bypass: new Set(), suppress: false, lookup: false });
		// As a killed agent leaves them, then the next start's clean-up.
		await routes.apply({ routes: ["0.0.0.0/0", "198.18.70.0/24"], bypass: ["198.18.200.1"] });
		await new KernelRoutes(run, { interfaceName: IFACE }).clear();
		state = await routes.read();
		expect(state).toEqual({ routes: new Set(), bypass: new Set(), suppress: false, lookup: false });
		const rules = (await host.exec("ip", ["-4", "rule", "show"])).stdout;
		expect(rules).not.toMatch(String(ROUTING_TABLE));
	});
});
