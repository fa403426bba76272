#!/usr/bin/env node
// Starts the control plane on its embedded defaults: management (gRPC + REST
// on 127.0.0.1:33073, SQLite in ./data) and signal (127.0.0.1:10000). The
// first start prints an admin token. Ctrl-C stops both.
// The services share this terminal as their stdout, so they log readable lines
// (see packages/log); piped or redirected, they log JSON. STARLING_LOG_FORMAT=json
// or =pretty forces one.
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { requireNode24 } from "./node24-check.mjs";

requireNode24("start-control-plane");

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const dataDir = process.env.STARLING_DATA_DIR ?? join(root, "data");
mkdirSync(dataDir, { recursive: true });

const env = { ...process.env, STARLING_DATA_DIR: dataDir };
// Management's heap and allocator settings (see apps/management/src/process-options.ts).
const { MANAGEMENT_NODE_FLAGS, MANAGEMENT_PROCESS_ENV } = await import(
	join(root, "apps/management/dist/process-options.js")
);
const services = [
	["signal", [join(root, "apps/signal/dist/main.js")], env],
	[
		"management",
		[...MANAGEMENT_NODE_FLAGS, join(root, "apps/management/dist/main.js")],
		{ ...env, ...MANAGEMENT_PROCESS_ENV },
	],
];

const children = services.map(([name, args, env]) => {
	const child = spawn(process.execPath, args, { env, stdio: "inherit" });
	child.on("exit", (code, signal) => {
		if (!stopping) {
			console.error(`start-control-plane: ${name} exited (${signal ?? code}); stopping`);
			stop(1);
		}
	});
	return child;
});

let stopping = false;
function stop(code) {
	if (stopping) return;
	stopping = true;
	for (const child of children) child.kill("SIGTERM");
	setTimeout(() => process.exit(code), 3000).unref();
	Promise.all(
		children.map((c) => new Promise((r) => (c.exitCode !== null ? r() : c.on("exit", r)))),
	).then(() => process.exit(code));
}
process.on("SIGINT", () => stop(0));
process.on("SIGTERM", () => stop(0));
// The addresses the services will use: their defaults unless the environment names others.
const managementListen = process.env.STARLING_MANAGEMENT_LISTEN || "127.0.0.1:33073";
const signalListen = process.env.STARLING_SIGNAL_LISTEN || "127.0.0.1:10000";
console.error(
	`start-control-plane: data in ${dataDir}; management on ${managementListen}, signal on ${signalListen}`,
);
