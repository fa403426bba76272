import type { Host } from "./lab.js";
import type { LabProcess } from "./process.js";

/** The STUN port coturn listens on unless told otherwise. */
export const STUN_PORT = 3478;

export interface StunServerOptions {
	/**
	 * Addresses of the host to listen on (default: its LAN address). With two, coturn supports
	 * RFC 5780: it names the other address in every answer and also listens on `port` + 1.
	 */
	addresses?: string[];
	/** Default 3478. */
	port?: number;
}

/**
 * coturn as a plain STUN server (Debian's turnserver, `--stun-only`), as in the compose
 * deployment, started in `host`. Resolves once it listens on every address.
 */
export async function startStunServer(
	host: Host,
	options: StunServerOptions = {},
): Promise<LabProcess> {
	const addresses = options.addresses ?? [host.address];
	const port = options.port ?? STUN_PORT;
	const stun = host.spawn(
		"turnserver",
		[
			"-n",
			"--stun-only",
			...addresses.flatMap((address) => ["-L", address]),
			"--listening-port",
			String(port),
			"--no-cli",
			"--no-tls",
			"--no-dtls",
			"--log-file",
			"stdout",
			"--simple-log",
		],
		{ name: "coturn" },
	);
	await stun.waitForOutput(/Relay ports initialization done/i, 20_000);
	// Its listeners open right after the relay ports: wait until the kernel shows each of them.
	const deadline = Date.now() + 10_000;
	for (;;) {
		const { stdout } = await host.exec("ss", ["-lun", `sport = :${port}`]);
		if (addresses.every((address) => stdout.includes(`${address}:${port}`))) return stun;
		if (Date.now() > deadline)
			throw new Error(`coturn in ${host.name} is not listening on port ${port}: ${stdout.trim()}`);
		await new Promise((resolve) => setTimeout(resolve, 100));
	}
}
