#!/usr/bin/env node
import { parseArgs } from "node:util";
import { createLogger } from "@starling/log";
import { runService } from "@starling/service-runtime";
import { createPersonalAccessToken, MAX_TOKEN_DAYS } from "./app/tokens.js";
import { ConfigError, loadManagementConfig } from "./config.js";
import { startManagement } from "./server.js";
import { CopyError, copySqliteToPostgres } from "./store/copy/copy-sqlite-to-postgres.js";
import { openStore } from "./store/open-store.js";
import { serverOf } from "./store/postgres/postgres-store.js";
import { StoreUnavailableError } from "./store/store.js";

const USAGE = `usage: starling-management [serve]
       starling-management token create [--user USER_ID] [--name NAME] [--expires-in-days N]
       starling-management migrate --from sqlite:PATH --to postgres:DSN

Configuration comes from STARLING_* environment variables and the optional JSON file
named by STARLING_CONFIG_FILE (same names; the environment wins); see docker/README.md.`;

function fail(message: string): never {
	process.stderr.write(`starling-management: ${message}\n`);
	process.exit(1);
}

async function serve(): Promise<void> {
	await runService({
		name: "starling-management",
		loadConfig: loadManagementConfig,
		createLogger: (config) => createLogger("management", { level: config.logLevel }),
		async start(config, logger) {
			const running = await startManagement(config, logger).catch((err: unknown) => {
				// The database cannot be reached at start: one line naming the server,
				// exit 1, before anything else has started.
				if (err instanceof StoreUnavailableError) fail(err.message);
				throw err;
			});
			logger.info(
				{
					listen: `${config.listen.host}:${running.port}`,
					metrics: config.metricsListen
						? `${config.metricsListen.host}:${running.metricsPort}`
						: "off",
					database: config.postgres
						? `postgres ${serverOf(config.postgres.dsn)}`
						: config.databasePath,
					tls: config.tls !== undefined,
				},
				"management is serving gRPC and REST",
			);
			if (running.bootstrap) {
				// The one time the first admin token is shown. It goes to stderr as a
				// plain notice, never into the JSON log stream.
				process.stderr.write(
					[
						"",
						"  Starling management: first start, an admin account was created.",
						`  Admin token (shown once; only its hash is stored): ${running.bootstrap.plainToken}`,
						`  Try: curl -H 'Authorization: Token <token>' ${config.tls ? "https" : "http"}://${config.listen.host}:${running.port}/api/peers`,
						config.adminTokenFile ? `  Also written to ${config.adminTokenFile} (mode 0600).` : "",
						"  Lost it? Mint another on the server: starling-management token create",
						"",
					].join("\n"),
				);
			}
			return running;
		},
	});
}

/** Recovery path: mint a token for a user straight in the store (run on the server). */
async function createToken(args: string[]): Promise<void> {
	const { values } = parseArgs({
		args,
		options: {
			user: { type: "string" },
			name: { type: "string", default: "cli" },
			"expires-in-days": { type: "string", default: "30" },
		},
		strict: true,
	});
	const days = Number(values["expires-in-days"]);
	if (!Number.isInteger(days) || days < 1 || days > MAX_TOKEN_DAYS) {
		fail(`--expires-in-days must be a whole number from 1 to ${MAX_TOKEN_DAYS}`);
	}
	const config = loadManagementConfig(process.env);
	const store = await openStore(config);
	try {
		const user = values.user ? await store.getUser(values.user) : await store.getFirstOwner();
		if (!user)
			fail(
				values.user
					? `no user with id ${values.user}`
					: "no owner exists yet: start the server once",
			);
		const { plainToken } = await createPersonalAccessToken(
			store,
			user,
			user.id,
			values.name,
			days,
			new Date(),
		);
		process.stdout.write(`${plainToken}\n`);
	} finally {
		await store.close();
	}
}

/**
 * Copies a SQLite installation into an empty PostgreSQL database (one
 * transaction); the source is only read. One line says what happened.
 */
async function migrateStore(args: string[]): Promise<void> {
	const { values } = parseArgs({
		args,
		options: { from: { type: "string" }, to: { type: "string" } },
		strict: true,
	});
	const from = values.from ?? "";
	const to = values.to ?? "";
	if (!from.startsWith("sqlite:") || from.length === "sqlite:".length) {
		fail("--from must be sqlite:PATH (the management.db of the installation to copy)");
	}
	if (!to.startsWith("postgres:"))
		fail("--to must be postgres:DSN, e.g. postgres:postgres://user:password@host:5432/starling");
	const dsn = to.slice("postgres:".length);
	try {
		const url = new URL(dsn);
		if (
			!["postgres:", "postgresql:"].includes(url.protocol) ||
			!url.hostname ||
			url.pathname.length <= 1
		) {
			throw new Error("bad");
		}
	} catch {
		fail("--to: expected postgres:postgres://user:password@host:5432/database");
	}
	try {
		const result = await copySqliteToPostgres(from.slice("sqlite:".length), dsn);
		const total = Object.values(result.rows).reduce((a, b) => a + b, 0);
		const detail = Object.entries(result.rows)
			.map(([table, n]) => `${table} ${n}`)
			.join(", ");
		process.stdout.write(
			`starling-management: migrated ${total} rows to ${result.target}; the target is complete (${detail}); the source is untouched\n`,
		);
	} catch (err) {
		if (err instanceof CopyError) fail(`${err.message}; the source is untouched`);
		throw err;
	}
}

async function main(argv: string[]): Promise<void> {
	const [command = "serve", sub, ...rest] = argv;
	if (command === "serve") return serve();
	if (command === "token" && sub === "create") return createToken(rest);
	if (command === "migrate") return migrateStore(argv.slice(1));
	if (command === "--help" || command === "-h" || command === "help") {
		process.stdout.write(`${USAGE}\n`);
		return;
	}
	fail(`unknown command '${[command, sub].filter(Boolean).join(" ")}'\n${USAGE}`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
	if (err instanceof ConfigError) fail(err.message);
	if (err instanceof TypeError && "code" in err && String(err.code).startsWith("ERR_PARSE_ARGS"))
		fail(err.message);
	fail(err instanceof Error ? err.message : String(err));
});
