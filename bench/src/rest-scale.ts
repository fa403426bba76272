// The REST API's account-wide listings at scale: GET /api/peers,
// /api/groups and /api/policies of an account of 5,000 peers, 100 groups
// and 200 policies, each against a bare fastify route registered on the
// same server in the same run that answers the same bytes from an array
// computed once (see lib-rest-scale-server.ts). Figure: requests/s of each
// listing and its ratio to the bare route; the target is a ratio of at
// least 0.5 for each.
//
// Usage: pnpm bench rest-scale [peers=5000] [groups=100] [policies=200] [seconds=10]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { log, numberArg } from "./lib-control-plane.js";
import {
	compareWithBare,
	LISTINGS,
	type ListingFigures,
	loadAverage,
	seedAccount,
	startRestScaleServer,
} from "./lib-rest-scale.js";

const peers = numberArg(1, "peers", 5000);
const groups = numberArg(2, "groups", 100);
const policies = numberArg(3, "policies", 200);
const seconds = numberArg(4, "seconds", 10);
const CONNECTIONS = 4;
const TARGET_RATIO = 0.5;

async function main(): Promise<void> {
	const loadBefore = loadAverage();
	const dataDir = mkdtempSync(join(tmpdir(), "starling-bench-rest-scale-"));
	try {
		log(`seeding ${peers} peers, ${groups} groups, ${policies} policies`);
		const seeded = await seedAccount(join(dataDir, "management.db"), { peers, groups, policies });
		const server = await startRestScaleServer(seeded);
		const figures: Record<string, ListingFigures> = {};
		try {
			for (const listing of LISTINGS) {
				figures[listing] = await compareWithBare(server, seeded.adminToken, listing, {
					seconds,
					connections: CONNECTIONS,
					log,
				});
				log(`${listing}: ${JSON.stringify(figures[listing])}`);
			}
		} finally {
			await server.stop();
		}
		const ratios = Object.values(figures).map((f) => f.ratio_to_bare);
		const result = {
			bench: "rest-scale",
			what:
				"requests/s of each listing (token check, store, per-account cache by revision, " +
				"schema serializer) against a bare route on the same fastify server answering the same " +
				"bytes from an array computed once (JSON.stringify, no token, no store)",
			peers,
			groups,
			policies,
			seconds_per_route: seconds,
			connections: CONNECTIONS,
			node: process.version,
			load_average_before: loadBefore,
			load_average_after: loadAverage(),
			listings: figures,
			target_ratio: TARGET_RATIO,
			target_met: ratios.every((r) => r >= TARGET_RATIO),
		};
		process.stdout.write(`${JSON.stringify(result)}\n`);
	} finally {
		rmSync(dataDir, { recursive: true, force: true });
	}
}

main().catch((err) => {
	console.error(err);
	process.exit(1);
});
