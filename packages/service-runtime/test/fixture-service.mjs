// A minimal service for run-service.test.ts: validates STARLING_TEST_PORT
// (from the environment or STARLING_CONFIG_FILE) and reports its close.
import { createLogger } from "@starling/log";
import { ConfigError, resolveSettings, runService } from "../dist/index.js";

await runService({
	name: "starling-fixture",
	loadConfig(env) {
		const settings = resolveSettings(env);
		const port = settings.STARLING_TEST_PORT ?? "1";
		if (!/^\d+$/.test(port))
			throw new ConfigError(`STARLING_TEST_PORT must be a number; got ${JSON.stringify(port)}`);
		return { port: Number(port) };
	},
	createLogger: () => createLogger("fixture"),
	async start(config, logger) {
		// Something to keep the process alive, as a real server's socket does.
		const alive = setInterval(() => undefined, 60_000);
		logger.info({ port: config.port }, "fixture running");
		return {
			async close() {
				clearInterval(alive);
				await new Promise((resolve) => setTimeout(resolve, 50));
				logger.info("fixture closed");
			},
		};
	},
});
