import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import type { DaemonServiceClient, NetcheckReport } from "@starling/proto";
import { runNetcheck } from "../netcheck/netcheck.js";
import { netcheckToJson, netcheckToText } from "../netcheck/report-format.js";
import { parseStunServer } from "../netcheck/verdict.js";

export interface NetcheckCliDeps {
	/** A connected daemon client (fails with one line when no daemon listens). */
	client: (socket: string) => Promise<DaemonServiceClient>;
	socketPath: (flag: string | undefined) => string;
	/** An error that exits 2 (bad usage). */
	usageError: (message: string) => Error;
}

/**
 * `starling netcheck [--json] [--stun HOST[:PORT]]... [--relay URL]... [--timeout MS]`.
 * Without --stun/--relay the daemon probes with what the network map names
 * (and lists peers without a direct path); with them this command probes
 * by itself, no daemon needed.
 */
export async function cmdNetcheck(args: string[], deps: NetcheckCliDeps): Promise<void> {
	let values: {
		json?: boolean;
		stun?: string[];
		relay?: string[];
		timeout?: string;
		socket?: string;
	};
	try {
		({ values } = parseArgs({
			args,
			options: {
				json: { type: "boolean" },
				stun: { type: "string", multiple: true },
				relay: { type: "string", multiple: true },
				timeout: { type: "string" },
				socket: { type: "string" },
			},
			strict: true,
			allowPositionals: false,
		}));
	} catch (err) {
		throw deps.usageError(`${(err as Error).message.split("\n")[0]} (see 'starling --help')`);
	}
	let timeoutMs = 0;
	if (values.timeout !== undefined) {
		timeoutMs = Number(values.timeout);
		if (!Number.isInteger(timeoutMs) || timeoutMs < 100 || timeoutMs > 10_000) {
			throw deps.usageError(`--timeout must be milliseconds (100-10000), got '${values.timeout}'`);
		}
	}
	const stun = values.stun ?? [];
	const relays = values.relay ?? [];
	for (const s of stun) {
		const parsed = parseStunServer(s);
		if ("error" in parsed) throw deps.usageError(`--stun ${parsed.error}`);
	}
	for (const r of relays) {
		if (!/^wss?:\/\/[^/\s]+/.test(r)) {
			throw deps.usageError(`--relay must be a ws:// or wss:// URL, got '${r}'`);
		}
	}

	let report: NetcheckReport;
	if (stun.length > 0 || relays.length > 0) {
		report = await runNetcheck({
			source: "cli",
			stunServers: stun,
			relayUrls: relays,
			stunTimeoutMs: timeoutMs || undefined,
		});
	} else {
		const c = await deps.client(deps.socketPath(values.socket));
		try {
			report = await new Promise<NetcheckReport>((resolve, reject) => {
				c.netcheck(
					{ stunTimeoutMs: timeoutMs },
					new grpc.Metadata(),
					{ deadline: new Date(Date.now() + 30_000) },
					(err, res) => (err ? reject(new Error(err.details || err.message)) : resolve(res)),
				);
			});
		} finally {
			c.close();
		}
	}
	process.stdout.write(
		values.json
			? `${JSON.stringify(netcheckToJson(report), null, 2)}\n`
			: `${netcheckToText(report)}\n`,
	);
}
