/**
 * One WireGuard interface, configured through `wg` and `ip` (the same commands for the kernel
 * module and wireguard-go). Every apply* reads the current state, plans the minimal change
 * (plan.ts) and runs only that, so calling it again with the same input runs no change at all.
 */

import { randomBytes } from "node:crypto";
import { readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { decodeKey, encodeKey, keyPairFromPrivateKey } from "@starling/crypto";
import type { Logger } from "@starling/log";
import type { Runner } from "../system/exec.js";
import { assertInterfaceName } from "./backend.js";
import {
	type CurrentRoute,
	parseIpAddrJson,
	parseIpLinkJson,
	parseIpRouteJson,
} from "./ip-state.js";
import {
	type AddressChange,
	type DesiredPeer,
	type PeerChange,
	planAddressChanges,
	planPeerChanges,
	planRouteChanges,
	type RouteChange,
} from "./plan.js";
import { type DeviceDump, parseWgDump } from "./wg-dump.js";

/**
 * Peers per `wg set` invocation. One invocation carries many peers; the cap only keeps the
 * argument list a sane size when thousands change at once.
 */
const PEERS_PER_COMMAND = 64;

export interface DeviceSettings {
	/** A file holding the base64 private key, mode 0600: the key never appears on a command line. */
	privateKeyFile: string;
	/** 0 lets WireGuard pick a port (then any port it already has is kept). */
	listenPort: number;
}

export interface ConfigureResult {
	privateKeyChanged: boolean;
	listenPortChanged: boolean;
}

export interface LinkResult {
	mtuChanged: boolean;
	broughtUp: boolean;
}

export class DeviceConfigError extends Error {
	override name = "DeviceConfigError";
}

/** The `wg set` arguments for one peer change (after "wg set <if>"). */
export function peerChangeArguments(change: PeerChange): string[] {
	const args = ["peer", change.publicKey];
	switch (change.kind) {
		case "remove":
			args.push("remove");
			break;
		case "add":
			// A new peer starts with no allowed IPs, no endpoint and keepalive off.
			if (change.allowedIps.length > 0) args.push("allowed-ips", change.allowedIps.join(","));
			if (change.endpoint !== undefined) args.push("endpoint", change.endpoint);
			if (change.persistentKeepalive)
				args.push("persistent-keepalive", String(change.persistentKeepalive));
			break;
		case "update":
			// An empty string is how `wg set` clears the allowed IPs.
			if (change.allowedIps !== undefined) args.push("allowed-ips", change.allowedIps.join(","));
			if (change.endpoint !== undefined) args.push("endpoint", change.endpoint);
			if (change.persistentKeepalive !== undefined) {
				args.push(
					"persistent-keepalive",
					change.persistentKeepalive === 0 ? "off" : String(change.persistentKeepalive),
				);
			}
			break;
	}
	return args;
}

/**
 * Writes a private key where `configure` can read it: base64 plus newline like `wg genkey`,
 * mode 0600 from the moment the file exists, replaced atomically.
 */
export async function writePrivateKeyFile(path: string, privateKey: Uint8Array): Promise<void> {
	const temporaryPath = `${path}.${randomBytes(6).toString("hex")}.tmp`;
	try {
		await writeFile(temporaryPath, `${encodeKey(privateKey)}\n`, { mode: 0o600, flag: "wx" });
		await rename(temporaryPath, path);
	} catch (error) {
		await unlink(temporaryPath).catch(() => {});
		throw error;
	}
}

/** The public key belonging to the private key in `path`; the key bytes are wiped after use. */
async function publicKeyOfKeyFile(path: string): Promise<string> {
	const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
		throw new DeviceConfigError(`private key file ${path}: ${error.code ?? error.message}`);
	});
	if ((info.mode & 0o077) !== 0) {
		throw new DeviceConfigError(
			`private key file ${path} is readable by others (mode ${(info.mode & 0o777).toString(8)}); it must be 0600`,
		);
	}
	const copies: Uint8Array[] = [];
	try {
		const privateKey = decodeKey((await readFile(path, "utf8")).trim());
		copies.push(privateKey);
		const pair = keyPairFromPrivateKey(privateKey);
		copies.push(pair.privateKey);
		return encodeKey(pair.publicKey);
	} catch {
		// Never echo the file's content: it is (nearly) a private key.
		throw new DeviceConfigError(`private key file ${path} does not hold a base64 WireGuard key`);
	} finally {
		for (const copy of copies) copy.fill(0);
	}
}

export class WireGuardDevice {
	/** Operations run one at a time: each plans from a read that another could make stale. */
	private queue: Promise<unknown> = Promise.resolve();

	constructor(
		readonly name: string,
		private readonly runner: Runner,
		private readonly logger?: Logger,
	) {
		assertInterfaceName(name);
	}

	private exclusive<T>(operation: () => Promise<T>): Promise<T> {
		const result = this.queue.then(operation);
		this.queue = result.catch(() => {});
		return result;
	}

	private async wgSet(args: readonly string[]): Promise<void> {
		await this.runner("wg", ["set", this.name, ...args]);
	}

	private async readDump(): Promise<DeviceDump> {
		const { stdout } = await this.runner("wg", ["show", this.name, "dump"]);
		return parseWgDump(stdout);
	}

	/** The interface's public state; the private key is dropped while parsing. */
	dump(): Promise<DeviceDump> {
		return this.exclusive(() => this.readDump());
	}

	/** Sets the private key and listen port, each only when it differs from what is set. */
	configure(settings: DeviceSettings): Promise<ConfigureResult> {
		return this.exclusive(async () => {
			const { privateKeyFile, listenPort } = settings;
			if (!Number.isInteger(listenPort) || listenPort < 0 || listenPort > 65535) {
				throw new DeviceConfigError(`listen port ${listenPort} must be 0..65535`);
			}
			const publicKey = await publicKeyOfKeyFile(privateKeyFile);
			const current = await this.readDump();
			const privateKeyChanged = current.publicKey !== publicKey;
			// Setting the port again makes wireguard-go rebind its socket: only when it differs.
			const listenPortChanged = listenPort !== 0 && current.listenPort !== listenPort;
			const args: string[] = [];
			if (privateKeyChanged) args.push("private-key", privateKeyFile);
			if (listenPortChanged) args.push("listen-port", String(listenPort));
			if (args.length > 0) {
				await this.wgSet(args);
				this.logger?.info(
					{ interface: this.name, publicKey, listenPort, privateKeyChanged, listenPortChanged },
					"configured WireGuard interface",
				);
			}
			return { privateKeyChanged, listenPortChanged };
		});
	}

	/**
	 * Makes the peers exactly `desired`, touching only peers that differ. Returns the changes
	 * made. After a failure the next call plans again from what is really there.
	 */
	applyPeers(desired: readonly DesiredPeer[]): Promise<PeerChange[]> {
		return this.exclusive(async () => {
			const current = await this.readDump();
			const changes = planPeerChanges(current.peers, desired);
			for (let start = 0; start < changes.length; start += PEERS_PER_COMMAND) {
				const batch = changes.slice(start, start + PEERS_PER_COMMAND);
				await this.wgSet(batch.flatMap(peerChangeArguments));
			}
			if (changes.length > 0) {
				this.logger?.info({ interface: this.name, changes }, "applied WireGuard peer changes");
			}
			return changes;
		});
	}

	/** Returns false when there was no such peer. */
	removePeer(publicKey: string): Promise<boolean> {
		return this.exclusive(async () => {
			const current = await this.readDump();
			if (!current.peers.some((peer) => peer.publicKey === publicKey)) return false;
			await this.wgSet(peerChangeArguments({ kind: "remove", publicKey }));
			this.logger?.info({ interface: this.name, publicKey }, "removed WireGuard peer");
			return true;
		});
	}

	setMtuAndUp(mtu: number): Promise<LinkResult> {
		return this.exclusive(async () => {
			if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) {
				throw new DeviceConfigError(`MTU ${mtu} must be 68..65535`);
			}
			const { stdout } = await this.runner("ip", ["-j", "link", "show", "dev", this.name]);
			const link = parseIpLinkJson(stdout);
			const mtuChanged = link.mtu !== mtu;
			const broughtUp = !link.up;
			const args: string[] = [];
			if (mtuChanged) args.push("mtu", String(mtu));
			if (broughtUp) args.push("up");
			if (args.length > 0) await this.runner("ip", ["link", "set", "dev", this.name, ...args]);
			return { mtuChanged, broughtUp };
		});
	}

	/** Makes the interface's (non link-local) addresses exactly `cidrs`, e.g. ["100.64.0.7/16"]. */
	applyAddresses(cidrs: readonly string[]): Promise<AddressChange[]> {
		return this.exclusive(async () => {
			const { stdout } = await this.runner("ip", ["-j", "addr", "show", "dev", this.name]);
			const changes = planAddressChanges(parseIpAddrJson(stdout), cidrs);
			for (const change of changes) {
				const verb = change.kind === "add" ? "add" : "del";
				await this.runner("ip", ["addr", verb, change.cidr, "dev", this.name]);
			}
			if (changes.length > 0) {
				this.logger?.info({ interface: this.name, changes }, "applied interface address changes");
			}
			return changes;
		});
	}

	/**
	 * Makes the routes through the interface exactly `cidrs` (e.g. peer /32s or the account
	 * network), apart from the routes the kernel keeps for the interface's own addresses.
	 */
	applyRoutes(cidrs: readonly string[]): Promise<RouteChange[]> {
		return this.exclusive(async () => {
			const changes = planRouteChanges(await this.readRoutes(), cidrs);
			for (const change of changes) {
				if (change.kind === "add") {
					await this.runner("ip", ["route", "add", change.destination, "dev", this.name]);
				} else {
					const protocol = change.protocol === undefined ? [] : ["proto", change.protocol];
					await this.runner("ip", [
						"route",
						"del",
						change.destination,
						"dev",
						this.name,
						...protocol,
					]);
				}
			}
			if (changes.length > 0) {
				this.logger?.info({ interface: this.name, changes }, "applied route changes");
			}
			return changes;
		});
	}

	private async readRoutes(): Promise<CurrentRoute[]> {
		const ipv4 = await this.runner("ip", ["-j", "-4", "route", "show", "dev", this.name]);
		// Without IPv6 in the kernel (or in this namespace) this fails; then there are no such routes.
		const ipv6 = await this.runner("ip", ["-j", "-6", "route", "show", "dev", this.name], {
			allowFailure: true,
		});
		return [
			...parseIpRouteJson(ipv4.stdout, 4),
			...(ipv6.exitCode === 0 ? parseIpRouteJson(ipv6.stdout, 6) : []),
		];
	}
}
