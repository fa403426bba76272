import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";

/** Commands the lab (and tests that run WireGuard in it) need in PATH. */
export const REQUIRED_TOOLS = [
	"ip",
	"nft",
	"conntrack",
	"nsenter",
	"unshare",
	"mount",
	"sysctl",
	"ping",
	"sleep",
	"sh",
	"wireguard-go",
	"wg",
] as const;

const PACKAGE_OF: Record<string, string> = {
	ip: "iproute2",
	nft: "nftables",
	conntrack: "conntrack",
	nsenter: "util-linux",
	unshare: "util-linux",
	mount: "mount",
	sysctl: "procps",
	ping: "iputils-ping",
	"wireguard-go": "wireguard-go",
	wg: "wireguard-tools",
};

const CAP_NET_ADMIN = 12n;
const CAP_SYS_ADMIN = 21n;

function hasCapability(bit: bigint): boolean {
	try {
		const status = readFileSync("/proc/self/status", "utf8");
		const match = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
		if (!match) return false;
		return ((BigInt(`0x${match[1]}`) >> bit) & 1n) === 1n;
	} catch {
		return false;
	}
}

export function findInPath(command: string): string | undefined {
	for (const dir of (process.env["PATH"] ?? "").split(delimiter)) {
		if (!dir) continue;
		const candidate = join(dir, command);
		try {
			accessSync(candidate, constants.X_OK);
			return candidate;
		} catch {
			// not here
		}
	}
	return undefined;
}

/** Why lab tests cannot run here, or undefined when they can. One line. */
export function computeSkipReason(): string | undefined {
	if (process.platform !== "linux")
		return `not Linux (${process.platform}): lab tests need network namespaces`;
	if (!hasCapability(CAP_NET_ADMIN)) return "not root: lab tests need CAP_NET_ADMIN";
	if (!hasCapability(CAP_SYS_ADMIN))
		return "no CAP_SYS_ADMIN: lab tests need it for namespaces and mounts";
	const missing = REQUIRED_TOOLS.filter((tool) => findInPath(tool) === undefined);
	if (missing.length > 0) {
		const packages = [...new Set(missing.map((t) => PACKAGE_OF[t]).filter(Boolean))];
		return `missing tool: ${missing.join("/")} (apt-get install --no-install-recommends ${packages.join(" ")})`;
	}
	if (!existsSync("/dev/net/tun")) return "missing /dev/net/tun: wireguard-go needs it";
	return undefined;
}

/** undefined when lab tests can run; otherwise one line saying why not. */
export const labSkipReason: string | undefined = computeSkipReason();
