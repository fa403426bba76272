import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Runner } from "../system/exec.js";

export const UNIT_NAME = "starling.service";

/** The systemd unit that runs `starling service run`. */
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
ExecStart=${nodePath} ${cliPath} service run
Restart=on-failure
RestartSec=2
${environment}

[Install]
WantedBy=multi-user.target
`.replace(/\n\n\n/g, "\n\n");
}

export class ServiceManager {
	constructor(
		private readonly runner: Runner,
		private readonly unitDir = process.env.STARLING_SYSTEMD_DIR ?? "/etc/systemd/system",
	) {}

	get unitPath(): string {
		return join(this.unitDir, UNIT_NAME);
	}

	private async systemctl(...args: string[]): Promise<string> {
		const { stdout } = await this.runner("systemctl", args);
		return stdout;
	}

	async install(nodePath: string, cliPath: string, env: Record<string, string>): Promise<void> {
		mkdirSync(this.unitDir, { recursive: true });
		writeFileSync(this.unitPath, renderUnit(nodePath, cliPath, env), { mode: 0o644 });
		await this.systemctl("daemon-reload");
		await this.systemctl("enable", UNIT_NAME);
	}

	async uninstall(): Promise<void> {
		await this.runner("systemctl", ["disable", "--now", UNIT_NAME], { allowFailure: true });
		if (existsSync(this.unitPath)) rmSync(this.unitPath);
		await this.runner("systemctl", ["daemon-reload"], { allowFailure: true });
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
