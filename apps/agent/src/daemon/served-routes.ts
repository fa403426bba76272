import type { Logger } from "@starling/log";
import { Forwarding, fileForwardingRecord, procSysctl } from "../routing/forwarding.js";
import { ForwardingConsumer } from "../routing/forwarding-consumer.js";
import {
	DEFAULT_ROUTING_TABLE,
	RoutingTable,
	renderRoutingTableRemoval,
} from "../routing/forwarding-table.js";
import type { Runner } from "../system/exec.js";
import type { BringUpSteps } from "./bring-up.js";

/**
 * The routing-peer part of `up`: the consumer of the map's served routes,
 * with an undo that gives forwarding back and removes the table.
 */
export function startServedRoutes(
	steps: BringUpSteps,
	runner: Runner,
	stateDirPath: string,
	interfaceName: string,
	logger: Logger,
): Promise<ForwardingConsumer> {
	return steps.run(
		"served routes",
		() =>
			new ForwardingConsumer(
				new RoutingTable(runner, interfaceName, DEFAULT_ROUTING_TABLE),
				new Forwarding(procSysctl(), fileForwardingRecord(stateDirPath)),
				logger.child({ component: "served-routes" }),
			),
		(consumer) => consumer.giveBack(),
	);
}

/**
 * What a killed daemon may have left as a routing peer: forwarding as it
 * recorded it before changing it, and the table. Both are tried.
 */
export async function removeServedRoutesLeftovers(
	runner: Runner,
	stateDirPath: string,
	logger: Logger,
): Promise<void> {
	const forwarding = new Forwarding(procSysctl(), fileForwardingRecord(stateDirPath));
	const results = await Promise.allSettled([
		(async () => {
			// An unreadable record throws here, and the table is still removed.
			if (forwarding.owned)
				logger.info("giving back net.ipv4.ip_forward changed by an earlier run");
			await forwarding.restore();
		})(),
		runner("nft", ["-f", "-"], { input: renderRoutingTableRemoval(DEFAULT_ROUTING_TABLE) }),
	]);
	const failed = results.find((r) => r.status === "rejected");
	if (failed) throw (failed as PromiseRejectedResult).reason;
}
