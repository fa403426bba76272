import {
	chmodSync,
	existsSync,
	mkdirSync,
	readFileSync,
	renameSync,
	statSync,
	writeFileSync,
} from "node:fs";
import { join } from "node:path";
import {
	decodeKey,
	encodeKey,
	generateKeyPair,
	type KeyPair,
	keyPairFromPrivateKey,
} from "@starling/crypto";

export type WireGuardBackendPreference = "auto" | "kernel" | "userspace";

/** What `starling up` remembers between runs (flags given once stay). */
export interface AgentConfig {
	managementUrl: string;
	interfaceName: string;
	wireguardPort: number;
	wireguardBackend: WireGuardBackendPreference;
	/** `up --disable-firewall`: run without the inbound firewall (until `up --enable-firewall`). */
	disableFirewall: boolean;
	/** The operator said `up` and not `down` since: come back up after a restart. */
	wantUp: boolean;
}

export const DEFAULT_CONFIG: AgentConfig = {
	managementUrl: "http://127.0.0.1:33073",
	interfaceName: "starling0",
	wireguardPort: 51820,
	wireguardBackend: "auto",
	disableFirewall: false,
	wantUp: false,
};

/**
 * The agent's state folder (default /var/lib/starling): the WireGuard private
 * key (mode 0600, generated here, never sent anywhere) and config.json.
 */
export class StateDir {
	constructor(readonly path: string) {}

	get privateKeyPath(): string {
		return join(this.path, "private.key");
	}

	private get configPath(): string {
		return join(this.path, "config.json");
	}

	ensure(): void {
		mkdirSync(this.path, { recursive: true, mode: 0o700 });
	}

	/** Loads the key pair, creating it on first use. Tightens a key file that is readable by others. */
	loadOrCreateKeyPair(): KeyPair {
		this.ensure();
		if (existsSync(this.privateKeyPath)) {
			if ((statSync(this.privateKeyPath).mode & 0o077) !== 0) chmodSync(this.privateKeyPath, 0o600);
			const text = readFileSync(this.privateKeyPath, "utf8").trim();
			return keyPairFromPrivateKey(decodeKey(text));
		}
		const pair = generateKeyPair();
		writeAtomically(this.privateKeyPath, `${encodeKey(pair.privateKey)}\n`, 0o600);
		return pair;
	}

	loadConfig(): AgentConfig {
		if (!existsSync(this.configPath)) return { ...DEFAULT_CONFIG };
		try {
			const saved = JSON.parse(readFileSync(this.configPath, "utf8")) as Partial<AgentConfig>;
			return { ...DEFAULT_CONFIG, ...saved };
		} catch {
			return { ...DEFAULT_CONFIG };
		}
	}

	saveConfig(config: AgentConfig): void {
		this.ensure();
		writeAtomically(this.configPath, `${JSON.stringify(config, null, 2)}\n`, 0o600);
	}
}

function writeAtomically(path: string, content: string, mode: number): void {
	const tmp = `${path}.tmp-${process.pid}`;
	writeFileSync(tmp, content, { mode });
	chmodSync(tmp, mode);
	renameSync(tmp, path);
}
