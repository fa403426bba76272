import type { NetcheckReport, NetcheckRequest } from "@starling/proto";
import { runNetcheck } from "../netcheck/netcheck.js";
import type { Agent } from "./agent.js";

/** The daemon's Netcheck RPC: probes with what the network map names. */
export async function daemonNetcheck(
	agent: Agent,
	request: NetcheckRequest,
): Promise<NetcheckReport> {
	const inputs = await agent.netcheckInputs();
	return runNetcheck({
		...inputs,
		source: "daemon",
		stunTimeoutMs: Math.min(request.stunTimeoutMs, 10_000) || undefined,
	});
}
