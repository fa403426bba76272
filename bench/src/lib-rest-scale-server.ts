// The server side of the REST listing benchmarks (rest-scale, policy-maps):
// management's REST API (buildRestApi, the SQLite store the caller seeded),
// plus, on the same fastify instance, one bare route per listing that
// answers an array computed once at start: the API's own answer, parsed. So
// the bare route sends the same bytes with no token check, no store and no
// schema (fastify's default JSON.stringify): the floor for that body on this
// server. Run by lib-rest-scale.ts as its own process, so that the load
// generator does not share its event loop.
//
// Usage: node lib-rest-scale-server.js <database file> <admin token>
// Prints one JSON line on stdout once listening: {"port": <port>}.
import { createLogger } from "@starling/log";
import { buildRestApi, SqliteStore } from "@starling/management";

/** The listings measured, and where each one's bare twin is served. */
export const LISTINGS = ["/api/peers", "/api/groups", "/api/policies"] as const;
export type Listing = (typeof LISTINGS)[number];
export const bareRouteOf = (listing: Listing) => `/bench/bare${listing.slice("/api".length)}`;

async function main(): Promise<void> {
	const [databasePath, adminToken] = process.argv.slice(2);
	if (!databasePath || !adminToken) {
		process.stderr.write("usage: lib-rest-scale-server.js <database file> <admin token>\n");
		process.exit(2);
	}
	const store = SqliteStore.open(databasePath);
	const precomputed = new Map<Listing, unknown>();
	const app = await buildRestApi({
		store,
		sink: { peerChanged() {}, peerRemoved() {}, accessChanged() {} },
		logger: createLogger("management", { level: "warn" }, { fd: 2, format: "json" }),
		extraRoutes: async (root) => {
			for (const listing of LISTINGS) {
				root.get(bareRouteOf(listing), async () => precomputed.get(listing));
			}
		},
	});
	for (const listing of LISTINGS) {
		const res = await app.inject({
			method: "GET",
			url: listing,
			headers: { authorization: `Token ${adminToken}` },
		});
		if (res.statusCode !== 200) throw new Error(`${listing}: ${res.statusCode} ${res.body}`);
		precomputed.set(listing, JSON.parse(res.body));
	}
	const address = await app.listen({ host: "127.0.0.1", port: 0 });
	process.stdout.write(`${JSON.stringify({ port: Number(new URL(address).port) })}\n`);
	const stop = async () => {
		await app.close();
		await store.close();
		process.exit(0);
	};
	process.once("SIGTERM", stop);
	process.once("SIGINT", stop);
}

if (import.meta.url === `file://${process.argv[1]}`) {
	main().catch((err) => {
		console.error(err);
		process.exit(1);
	});
}
