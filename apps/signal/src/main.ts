#!/usr/bin/env node
// starling-signal: the signal server as a process. Configuration comes from
// the environment and STARLING_CONFIG_FILE (see README.md); SIGTERM or SIGINT
// closes it gracefully.
import { randomBytes } from "node:crypto";
import { type Bus, BusConnectError, NatsBus } from "@starling/bus";
import { createLogger } from "@starling/log";
import { runService } from "@starling/service-runtime";
import { loadConfig, type SignalConfig } from "./config.js";
import { type SignalServer, startSignalServer } from "./server.js";

const BUS_CLOSE_GRACE_MS = 2_000;

/** With STARLING_NATS_URL, the bus to the other instances; without, none (one instance). */
async function connectBus(config: SignalConfig, instanceId: string): Promise<Bus | undefined> {
	if (!config.natsServers) return undefined;
	try {
		return await NatsBus.connect({
			servers: config.natsServers,
			name: `signal-${instanceId}`,
		});
	} catch (err) {
		// One line naming the variable and the server (no credentials: the bus redacts them).
		if (err instanceof BusConnectError) throw new Error(`STARLING_NATS_URL: ${err.message}`);
		throw err;
	}
}

/** Drains the bus, but does not let a NATS that is down hold the shutdown up. */
async function closeBus(bus: Bus | undefined): Promise<void> {
	if (!bus) return;
	let timer: NodeJS.Timeout | undefined;
	await Promise.race([
		bus.close(),
		new Promise<void>((resolve) => {
			timer = setTimeout(resolve, BUS_CLOSE_GRACE_MS);
		}),
	]);
	clearTimeout(timer);
}

await runService({
	name: "starling-signal",
	loadConfig,
	createLogger: (config) => createLogger("signal", { level: config.logLevel }),
	start: async (config, logger): Promise<SignalServer> => {
		const instanceId = randomBytes(6).toString("hex");
		const bus = await connectBus(config, instanceId);
		let server: SignalServer;
		try {
			server = await startSignalServer({
				host: config.host,
				port: config.port,
				tls: config.tls,
				metricsListen: config.metricsListen,
				heartbeatIntervalMs: config.heartbeatIntervalMs,
				logger,
				bus,
				instanceId,
			});
		} catch (err) {
			await closeBus(bus);
			throw err;
		}
		return {
			...server,
			close: async () => {
				await server.close();
				await closeBus(bus);
			},
		};
	},
});
