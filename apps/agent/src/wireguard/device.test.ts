import { chmod, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeKey, generateKeyPair } from "@starling/crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Runner } from "../system/exec.js";
import {
	DeviceConfigError,
	peerChangeArguments,
	WireGuardDevice,
	writePrivateKeyFile,
} from "./device.js";

/** A Runner answering `wg show ... dump` and `ip -j ... show` from fixed text, recording the rest. */
function fakeRunner(answers: {
	dump?: string;
	link?: string;
	addr?: string;
	route4?: string;
	route6?: string;
}) {
	const commands: string[][] = [];
	const runner: Runner = async (command, args) => {
		commands.push([command, ...args]);
		const line = [command, ...args].join(" ");
		const stdout = line.endsWith(" dump")
			? (answers.dump ?? "(none)\t(none)\t0\toff")
			: line.startsWith("ip -j link")
				? (answers.link ?? "")
				: line.startsWith("ip -j addr")
					? (answers.addr ?? "")
					: line.startsWith("ip -j -4 route")
						? (answers.route4 ?? "")
						: line.startsWith("ip -j -6 route")
							? (answers.route6 ?? "")
							: "";
		// A little latency, so that overlapping operations would interleave if not serialized.
		await new Promise((resolve) => setTimeout(resolve, 2));
		return { stdout, stderr: "", exitCode: 0 };
	};
	return { runner, commands };
}

const keys = Array.from({ length: 70 }, () => encodeKey(generateKeyPair().publicKey));

describe("WireGuardDevice.configure", () => {
	let directory: string;
	beforeAll(async () => {
		directory = await mkdtemp(join(tmpdir(), "starling-wg-test-"));
	});
	afterAll(async () => {
		await rm(directory, { recursive: true, force: true });
	});

	it("passes the key by file only, and only when it differs", async () => {
		const pair = generateKeyPair();
		const file = join(directory, "key");
		await writePrivateKeyFile(file, pair.privateKey);
		expect((await stat(file)).mode & 0o777).toBe(0o600);

		const fresh = fakeRunner({});
		const result = await new WireGuardDevice("starling0", fresh.runner).configure({
			privateKeyFile: file,
			listenPort: 51820,
		});
		expect(result).toEqual({ privateKeyChanged: true, listenPortChanged: true });
		expect(fresh.commands.at(-1)).toEqual([
			"wg",
			"set",
			"starling0",
			"private-key",
			file,
			"listen-port",
			"51820",
		]);
		expect(JSON.stringify(fresh.commands)).not.toContain(encodeKey(pair.privateKey));

		const configured = fakeRunner({ dump: `(hidden)\t${encodeKey(pair.publicKey)}\t51820\toff` });
		const again = await new WireGuardDevice("starling0", configured.runner).configure({
			privateKeyFile: file,
			listenPort: 51820,
		});
		expect(again).toEqual({ privateKeyChanged: false, listenPortChanged: false });
		expect(configured.commands.filter((command) => command[1] === "set")).toEqual([]);
	});

	it("refuses a key file others can read, or one without a key, without echoing it", async () => {
		const file = join(directory, "loose");
		await writePrivateKeyFile(file, generateKeyPair().privateKey);
		await chmod(file, 0o644);
		const device = new WireGuardDevice("starling0", fakeRunner({}).runner);
		await expect(device.configure({ privateKeyFile: file, listenPort: 51820 })).rejects.toThrow(
			/must be 0600/,
		);
		const garbage = join(directory, "garbage");
		await writeFile(garbage, "secret-looking-text\n", { mode: 0o600 });
		const error = await device
			.configure({ privateKeyFile: garbage, listenPort: 1 })
			.catch((caught: unknown) => caught);
		expect(error).toBeInstanceOf(DeviceConfigError);
		expect((error as Error).message).not.toContain("secret-looking-text");
	});
});

describe("WireGuardDevice.applyPeers", () => {
	it("carries many peers per wg set, in bounded batches", async () => {
		const { runner, commands } = fakeRunner({});
		const desired = keys.map((publicKey, index) => ({
			publicKey,
			allowedIps: [`100.64.1.${index}/32`],
		}));
		const changes = await new WireGuardDevice("starling0", runner).applyPeers(desired);
		expect(changes).toHaveLength(70);
		const sets = commands.filter((command) => command[1] === "set");
		expect(sets.map((command) => command.filter((arg) => arg === "peer").length)).toEqual([64, 6]);
	});

	it("runs one operation at a time, so each plans from a fresh read", async () => {
		const { runner, commands } = fakeRunner({});
		const device = new WireGuardDevice("starling0", runner);
		await Promise.all([
			device.applyPeers([{ publicKey: keys[0] ?? "", allowedIps: [] }]),
			device.applyPeers([{ publicKey: keys[1] ?? "", allowedIps: [] }]),
		]);
		expect(commands.map((command) => command[1])).toEqual(["show", "set", "show", "set"]);
	});

	it("spells updates the way wg set wants them", () => {
		const publicKey = keys[0] ?? "";
		expect(
			peerChangeArguments({ kind: "update", publicKey, allowedIps: [], persistentKeepalive: 0 }),
		).toEqual(["peer", publicKey, "allowed-ips", "", "persistent-keepalive", "off"]);
		expect(
			peerChangeArguments({
				kind: "add",
				publicKey,
				allowedIps: ["100.64.0.2/32", "fd00::/64"],
				persistentKeepalive: 25,
			}),
		).toEqual([
			"peer",
			publicKey,
			"allowed-ips",
			"100.64.0.2/32,fd00::/64",
			"persistent-keepalive",
			"25",
		]);
	});
});

describe("WireGuardDevice addresses, routes and link", () => {
	it("deletes only the route it means, naming its protocol", async () => {
		const { runner, commands } = fakeRunner({
			route4:
				'[{"dst":"100.64.0.0/16","protocol":"kernel","scope":"link","prefsrc":"100.64.0.1","flags":[]},{"dst":"100.65.0.0/16","protocol":"static","scope":"link","flags":[]}]',
		});
		await new WireGuardDevice("starling0", runner).applyRoutes(["100.64.0.0/16"]);
		expect(commands.filter((command) => command[1] === "route" && command[2] !== "show")).toEqual([
			["ip", "route", "del", "100.65.0.0/16", "dev", "starling0", "proto", "static"],
		]);
	});

	it("removes an old address before adding the new one", async () => {
		const { runner, commands } = fakeRunner({
			addr: '[{"ifname":"starling0","addr_info":[{"family":"inet","local":"100.64.0.1","prefixlen":16,"scope":"global"}]}]',
		});
		await new WireGuardDevice("starling0", runner).applyAddresses(["100.64.0.2/16"]);
		expect(commands.slice(1)).toEqual([
			["ip", "addr", "del", "100.64.0.1/16", "dev", "starling0"],
			["ip", "addr", "add", "100.64.0.2/16", "dev", "starling0"],
		]);
	});

	it("sets MTU and up in one command, and nothing when both are right", async () => {
		const down = fakeRunner({
			link: '[{"ifname":"starling0","flags":["POINTOPOINT","NOARP"],"mtu":1420}]',
		});
		expect(await new WireGuardDevice("starling0", down.runner).setMtuAndUp(1280)).toEqual({
			mtuChanged: true,
			broughtUp: true,
		});
		expect(down.commands.at(-1)).toEqual([
			"ip",
			"link",
			"set",
			"dev",
			"starling0",
			"mtu",
			"1280",
			"up",
		]);
		const up = fakeRunner({
			link: '[{"ifname":"starling0","flags":["UP","LOWER_UP"],"mtu":1280}]',
		});
		await new WireGuardDevice("starling0", up.runner).setMtuAndUp(1280);
		expect(up.commands).toHaveLength(1);
	});
});
