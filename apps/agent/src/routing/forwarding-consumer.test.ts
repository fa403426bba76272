import { createLogger } from "@starling/log";
import type { NetworkMap, ServedRoute } from "@starling/proto";
import { describe, expect, it } from "vitest";
import { ForwardingConsumer } from "./forwarding-consumer.js";
import type { CanonicalServedRoute } from "./forwarding-table.js";

const logger = createLogger("forwarding-consumer-test", { level: "silent" });
const route: ServedRoute = {
	routeId: "r1",
	network: "198.18.10.0/24",
	masquerade: true,
	filtered: false,
	rules: [],
	sources: ["100.64.0.2/32"],
};
const map = (servedRoutes: ServedRoute[]) => ({ servedRoutes }) as unknown as NetworkMap;

/** Records the order of what the consumer asks the (fake) table and sysctl for. */
function fakes(fail?: string) {
	const calls: string[] = [];
	const table = {
		apply: async (routes: readonly CanonicalServedRoute[]) => {
			calls.push(`table ${routes.map((r) => r.network).join(",")}`);
			if (fail === "table") throw new Error("nft: no");
		},
		remove: async () => {
			calls.push("table removed");
		},
	};
	const forwarding = {
		set: async (on: boolean) => {
			calls.push(`forwarding ${on ? "on" : "given back"}`);
		},
	};
	return { calls, consumer: new ForwardingConsumer(table, forwarding, logger) };
}

describe("ForwardingConsumer", () => {
	it("installs the table before forwarding goes on, and gives forwarding back before removing it", async () => {
		const { calls, consumer } = fakes();
		consumer.applyMap(map([route]));
		await consumer.settled();
		consumer.applyMap(map([route]));
		await consumer.settled();
		consumer.applyMap(map([]));
		await consumer.settled();
		expect(calls).toEqual([
			"table 198.18.10.0/24",
			"forwarding on",
			"forwarding given back",
			"table removed",
		]);
	});

	it("never turns forwarding on when the table could not be written, and retries on the next map", async () => {
		const { calls, consumer } = fakes("table");
		consumer.applyMap(map([route]));
		await consumer.settled();
		expect(calls).toEqual(["table 198.18.10.0/24"]);
		expect(consumer.status()[0]?.error).toBe("nft: no");
		consumer.applyMap(map([route]));
		await consumer.settled();
		expect(calls).toEqual(["table 198.18.10.0/24", "table 198.18.10.0/24"]);
	});

	it("giveBack (down, exit) restores forwarding and removes the table", async () => {
		const { calls, consumer } = fakes();
		consumer.applyMap(map([route]));
		await consumer.giveBack();
		expect(calls.slice(-2)).toEqual(["forwarding given back", "table removed"]);
		expect(consumer.status()).toEqual([]);
	});
});
