import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DAEMON_NODE_FLAGS } from "../daemon/node-flags.js";
import type { Runner } from "../system/exec.js";

export const UNIT_NAME = "starling.service";

/** The systemd unit that runs `starling service run`, with the daemon's V8 flags (daemon/node-flags.ts). */
export function renderUnit(
	nodePath: string,
	cliPath: string,
	env: Record<string, string> = {},
): string {
	const environment = Object.entries(env)
		.map(([k, v]) => `Environment=${k}=${v}`)
		.join("\n");
	return `[Unit]
Description=Starling overlay network agent
Documentation=https://github.com/starling/starling
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=${[nodePath, ...DAEMON_NODE_FLAGS, cliPath].join(" ")} service run
Restart=on-failure
RestartSec=2
${environment}

[Install]
WantedBy=multi-user.target
`.replace(/\n\n\n/g, "\n\n");
}

/** The `Environment=NAME=value` lines of a unit, as written by renderUnit. */
export function parseUnitEnvironment(unit: string): Record<string, string> {
	const env: Record<string, string> = {};
	for (const line of unit.split("\n")) {
		const match = /^Environment=([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
		if (match?.[1] !== undefined && match[2] !== undefined) env[match[1]] = match[2];
	}
	return env;
}

export interface InstallResult {
	/** systemd is the running init (sd_booted): the unit was loaded and enabled. */
	systemdRunning: boolean;
	/** The unit is enabled for multi-user.target (also offline, e.g. in a chroot). */
	enabled: boolean;
}

export class ServiceManager {
	constructor(
		private readonly runner: Runner,
		private readonly unitDir = process.env.STARLING_SYSTEMD_DIR ?? "/etc/systemd/system",
		// sd_booted(3): this directory exists only while systemd is the init system.
		private readonly systemdRunDir = "/run/systemd/system",
	) {}

	get unitPath(): string {
		return join(this.unitDir, UNIT_NAME);
	}

	private async systemctl(...args: string[]): Promise<string> {
		const { stdout } = await this.runner("systemctl", args);
		return stdout;
	}

	/** The environment the installed unit gives the daemon; empty when no unit is installed. */
	installedEnvironment(): Record<string, string> {
		if (!existsSync(this.unitPath)) return {};
		return parseUnitEnvironment(readFileSync(this.unitPath, "utf8"));
	}

	/**
	 * Writes the unit and enables it. Without a running systemd (a chroot, a
	 * container, an image being built) the unit is still written and, where
	 * systemctl exists, enabled offline, so it starts on the next boot.
	 */
	async install(
		nodePath: string,
		cliPath: string,
		env: Record<string, string>,
	): Promise<InstallResult> {
		mkdirSync(this.unitDir, { recursive: true });
		writeFileSync(this.unitPath, renderUnit(nodePath, cliPath, env), { mode: 0o644 });
		if (existsSync(this.systemdRunDir)) {
			await this.systemctl("daemon-reload");
			await this.systemctl("enable", UNIT_NAME);
			return { systemdRunning: true, enabled: true };
		}
		const { exitCode } = await this.runner("systemctl", ["enable", UNIT_NAME], {
			allowFailure: true,
		});
		return { systemdRunning: false, enabled: exitCode === 0 };
	}

	/** Stops the service and disables it; no error when it is not there or systemd is not. */
	async stopAndDisable(): Promise<void> {
		await this.runner("systemctl", ["disable", "--now", UNIT_NAME], { allowFailure: true });
	}

	/** Removes the unit file; true when there was one. */
	async removeUnit(): Promise<boolean> {
		const existed = existsSync(this.unitPath);
		if (existed) rmSync(this.unitPath);
		if (existsSync(this.systemdRunDir)) {
			await this.runner("systemctl", ["daemon-reload"], { allowFailure: true });
		}
		return existed;
	}

	start(): Promise<string> {
		return this.systemctl("start", UNIT_NAME);
	}

	stop(): Promise<string> {
		return this.systemctl("stop", UNIT_NAME);
	}

	async status(): Promise<string> {
		const { stdout } = await this.runner("systemctl", ["is-active", UNIT_NAME], {
			allowFailure: true,
		});
		return stdout.trim() || "unknown";
	}
}
