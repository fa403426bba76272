#!/usr/bin/env node
import { spawnSync } from "node:child_process";
// `pnpm bench <name>`: runs bench/dist/<name>.js (built by `pnpm build`).
// Each benchmark prints progress to stderr and its figures as one JSON line last on stdout.
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { requireNode24 } from "../scripts/node24-check.mjs";

requireNode24("bench");

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
const available = existsSync(dist)
	? readdirSync(dist)
			.filter((f) => f.endsWith(".js") && !f.startsWith("lib-"))
			.map((f) => f.slice(0, -3))
	: [];
const name = process.argv[2];
if (!name || !available.includes(name)) {
	console.error(
		`usage: pnpm bench <name>; available: ${available.join(", ") || "(none: run pnpm build)"}`,
	);
	process.exit(2);
}
const result = spawnSync(
	process.execPath,
	["--expose-gc", join(dist, `${name}.js`), ...process.argv.slice(3)],
	{
		stdio: "inherit",
	},
);
process.exit(result.status ?? 1);
