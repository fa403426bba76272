import { AddressError, formatIPv4, parseLabSubnet } from "./address.js";
import type { Lab, LabNode } from "./lab.js";
import { run } from "./run.js";

/** A veth pair between a lab node and the root network namespace. */
export interface RootUplink {
	/** The interface in the root namespace, `stlup-<lab>`. */
	readonly rootInterface: string;
	/** The root namespace's address on the link (the second of the /30). */
	readonly rootAddress: string;
	/** The node's address on the link (the first of the /30), interface `uplink`. */
	readonly nodeAddress: string;
}

export interface RootUplinkOptions {
	/** A /30 in 198.18.0.0/15 for the link itself. */
	subnet: string;
	/** Lab subnets the root namespace routes to via the node (e.g. the node's LAN). */
	routes: string[];
}

/**
 * Links a lab node to the root network namespace, for tests whose servers run
 * outside the lab (e.g. containers on a docker bridge): the one thing a lab
 * ever creates in the root namespace. The node forwards between its LAN and
 * the link; the root namespace routes `routes` to it (forwarding in the root
 * namespace is left as it is: docker turns it on). Only 198.18.0.0/15
 * addresses are used. Destroying the lab deletes the node's namespace, which
 * deletes the pair and the root namespace's routes through it, so a crashed
 * run leaves nothing once its namespaces are swept.
 */
export async function addRootUplink(
	lab: Lab,
	node: LabNode,
	options: RootUplinkOptions,
): Promise<RootUplink> {
	if (!lab.namespaces.includes(node.netns)) {
		throw new Error(`node ${node.name} is not part of lab ${lab.name}`);
	}
	const link = parseLabSubnet(options.subnet);
	if (link.prefix !== 30) throw new AddressError(`uplink subnet must be a /30, got ${link.text}`);
	const routes = options.routes.map((r) => parseLabSubnet(r).text);
	const nodeAddress = formatIPv4(link.network + 1);
	const rootAddress = formatIPv4(link.network + 2);
	const rootInterface = `stlup-${lab.name}`;
	// A leftover of a crashed run of the same lab whose namespace is already gone.
	await run("ip", ["link", "del", rootInterface], { allowFailure: true });
	await run("ip", [
		"link",
		"add",
		rootInterface,
		"type",
		"veth",
		"peer",
		"name",
		"uplink",
		"netns",
		node.netns,
	]);
	await run("ip", ["addr", "add", `${rootAddress}/30`, "dev", rootInterface]);
	await run("ip", ["link", "set", rootInterface, "up"]);
	await run("ip", ["-n", node.netns, "addr", "add", `${nodeAddress}/30`, "dev", "uplink"]);
	await run("ip", ["-n", node.netns, "link", "set", "uplink", "up"]);
	await node.exec("sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"]);
	for (const route of routes) {
		await run("ip", ["route", "replace", route, "via", nodeAddress, "dev", rootInterface]);
	}
	return { rootInterface, rootAddress, nodeAddress };
}
