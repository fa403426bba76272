/**
 * `starling service uninstall [--purge]`: removes what the agent put on the
 * machine. The daemon removes its interface and nftables tables itself when
 * systemd stops it; this also removes them when the daemon crashed or was
 * killed and left them behind.
 */

import { existsSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { resolve } from "node:path";
import { StateDir } from "../daemon/state-dir.js";
import { statusSocketPath } from "../daemon/status-wire.js";
import { DEFAULT_FIREWALL_TABLE } from "../netfilter/firewall.js";
import { DEFAULT_PORT_REWRITE_TABLE } from "../netfilter/port-rewrite.js";
import { Forwarding, fileForwardingRecord, procSysctl } from "../routing/forwarding.js";
import { DEFAULT_ROUTING_TABLE } from "../routing/forwarding-table.js";
import type { Runner } from "../system/exec.js";
import { assertInterfaceName, socketPathFor } from "../wireguard/backend.js";
import type { ServiceManager } from "./systemd.js";

/** The nftables tables (family inet) the agent creates. */
export const AGENT_NFT_TABLES = [
	DEFAULT_PORT_REWRITE_TABLE,
	DEFAULT_FIREWALL_TABLE,
	DEFAULT_ROUTING_TABLE,
] as const;

export interface UninstallOptions {
	/** Where the daemon keeps its key and config (the unit's STARLING_DATA_DIR, or the default). */
	stateDir: string;
	/** The daemon's control socket. */
	socketPath: string;
	/** Also delete the state folder: the peer's private key and saved config. */
	purge: boolean;
}

export interface UninstallReport {
	unitRemoved: boolean;
	/** The WireGuard interface that was still there and was deleted. */
	interfaceRemoved?: string;
	tablesRemoved: string[];
	/** net.ipv4.ip_forward was given back to the value recorded before the agent changed it. */
	forwardingRestored: boolean;
	statePurged: boolean;
}

/** An uninstall that must not go on; `message` is one line for the operator. */
export class UninstallError extends Error {
	override name = "UninstallError";
}

/**
 * State folders that are never deleted, whatever a unit or a flag says:
 * a typo must not cost the machine.
 */
export function isUnsafeToPurge(path: string): boolean {
	const absolute = resolve(path);
	return /^\/(?:bin|boot|dev|etc|home|lib|lib64|opt|proc|root|run|sbin|srv|sys|tmp|usr|var|var\/lib)?\/?$/.test(
		absolute,
	);
}

function socketAnswers(path: string): Promise<boolean> {
	return new Promise((done) => {
		const socket = connect(path);
		socket.once("connect", () => {
			socket.destroy();
			done(true);
		});
		socket.once("error", () => done(false));
	});
}

export async function uninstallAgent(
	runner: Runner,
	manager: ServiceManager,
	options: UninstallOptions,
): Promise<UninstallReport> {
	if (options.purge && isUnsafeToPurge(options.stateDir)) {
		throw new UninstallError(`refusing to purge ${resolve(options.stateDir)}: not a state folder`);
	}
	// The config names the interface: read it before a purge deletes it.
	const config = new StateDir(options.stateDir).loadConfig();
	assertInterfaceName(config.interfaceName);

	// Stopping the unit lets the daemon take its interface and tables down itself.
	await manager.stopAndDisable();

	// A daemon started by hand (`starling service run`) would recreate what we remove.
	if (existsSync(options.socketPath) && (await socketAnswers(options.socketPath))) {
		throw new UninstallError(
			`a starling daemon outside systemd still listens on ${options.socketPath}: stop it (Ctrl-C or kill its 'service run' process) and run uninstall again`,
		);
	}

	const unitRemoved = await manager.removeUnit();
	const report: UninstallReport = {
		unitRemoved,
		tablesRemoved: [],
		forwardingRestored: false,
		statePurged: false,
	};

	// Missing tools (ip, nft) exit non-zero here, which reads as "nothing to remove".
	const link = await runner("ip", ["link", "show", "dev", config.interfaceName], {
		allowFailure: true,
	});
	if (link.exitCode === 0) {
		// Deleting the link also ends a wireguard-go serving it.
		await runner("ip", ["link", "del", "dev", config.interfaceName]);
		report.interfaceRemoved = config.interfaceName;
	}
	rmSync(socketPathFor(config.interfaceName), { force: true });

	for (const table of AGENT_NFT_TABLES) {
		const listed = await runner("nft", ["list", "table", "inet", table], { allowFailure: true });
		if (listed.exitCode !== 0) continue;
		await runner("nft", ["delete", "table", "inet", table]);
		report.tablesRemoved.push(table);
	}

	// A routing peer killed while serving routes left forwarding on: its record says what it was.
	const forwarding = new Forwarding(procSysctl(), fileForwardingRecord(options.stateDir));
	if (forwarding.owned) {
		await forwarding.restore();
		report.forwardingRestored = true;
	}

	rmSync(options.socketPath, { force: true });
	rmSync(statusSocketPath(options.socketPath), { force: true });
	if (options.purge && existsSync(options.stateDir)) {
		rmSync(options.stateDir, { recursive: true, force: true });
		report.statePurged = true;
	}
	return report;
}
