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
	sleep: "coreutils",
	sh: "dash",
	"wireguard-go": "wireguard-go",
	wg: "wireguard-tools",
};

const CAP_NET_ADMIN = 12n;
const CAP_SYS_ADMIN = 21n;

/** The environment variable a developer sets to skip the lab tests on purpose. */
export const SKIP_LAB_VARIABLE = "STARLING_SKIP_LAB";

/** What this machine offers the lab; read by `readLabHostFacts`, judged by `labUnavailableReason`. */
export interface LabHostFacts {
	platform: string;
	/** The effective capability set (CapEff of /proc/self/status); undefined when unreadable. */
	effectiveCapabilities: bigint | undefined;
	/** REQUIRED_TOOLS not found in PATH, in REQUIRED_TOOLS order. */
	missingTools: readonly string[];
	hasTunDevice: boolean;
}

function hasCapability(capabilities: bigint | undefined, bit: bigint): boolean {
	return capabilities !== undefined && ((capabilities >> bit) & 1n) === 1n;
}

/** Why the lab cannot run on a machine with these facts, or undefined when it can. One line. */
export function labUnavailableReason(facts: LabHostFacts): string | undefined {
	if (facts.platform !== "linux")
		return `not Linux (${facts.platform}): lab tests need network namespaces`;
	if (!hasCapability(facts.effectiveCapabilities, CAP_NET_ADMIN))
		return "not root: lab tests need CAP_NET_ADMIN";
	if (!hasCapability(facts.effectiveCapabilities, CAP_SYS_ADMIN))
		return "no CAP_SYS_ADMIN: lab tests need it for namespaces and mounts";
	if (facts.missingTools.length > 0) {
		const packages = [
			...new Set(facts.missingTools.map((tool) => PACKAGE_OF[tool]).filter(Boolean)),
		];
		return `missing tool: ${facts.missingTools.join("/")} (apt-get install --no-install-recommends ${packages.join(" ")})`;
	}
	if (!facts.hasTunDevice) return "missing /dev/net/tun: wireguard-go needs it";
	return undefined;
}

/**
 * Whether the developer asked to skip the lab tests: `STARLING_SKIP_LAB=1` does, unset, empty
 * or `0` does not. Anything else throws, so a typo cannot silently run or skip them.
 */
export function skipLabRequested(value: string | undefined): boolean {
	if (value === undefined || value === "" || value === "0") return false;
	if (value === "1") return true;
	throw new Error(`${SKIP_LAB_VARIABLE} must be 1 (skip the lab tests) or unset, not "${value}"`);
}

/** What the test run does about the lab: run it, fail at once, or skip it because asked to. */
export type LabGate =
	| { action: "run" }
	| { action: "fail"; line: string }
	| { action: "skip"; reason: string };

export function decideLabGate(skipRequested: boolean, unavailable: string | undefined): LabGate {
	if (skipRequested) {
		return {
			action: "skip",
			reason: `${SKIP_LAB_VARIABLE}=1 (${unavailable === undefined ? "the lab could run here" : `here the lab cannot run: ${unavailable}`})`,
		};
	}
	if (unavailable === undefined) return { action: "run" };
	return {
		action: "fail",
		line: `the network-lab tests cannot run here: ${unavailable}; set ${SKIP_LAB_VARIABLE}=1 to skip them on purpose`,
	};
}

function readEffectiveCapabilities(): bigint | undefined {
	try {
		const match = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"));
		return match ? BigInt(`0x${match[1]}`) : undefined;
	} catch {
		return undefined;
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

/** Reads this process's platform, capabilities, PATH and /dev/net/tun. */
export function readLabHostFacts(): LabHostFacts {
	return {
		platform: process.platform,
		effectiveCapabilities: readEffectiveCapabilities(),
		missingTools: REQUIRED_TOOLS.filter((tool) => findInPath(tool) === undefined),
		hasTunDevice: existsSync("/dev/net/tun"),
	};
}

/** Why the lab cannot run on this machine, or undefined when it can. `Lab.create` throws it. */
export const labUnavailable: string | undefined = labUnavailableReason(readLabHostFacts());

/**
 * Set only when the developer asked to skip the lab tests (`STARLING_SKIP_LAB=1`): one line
 * saying so, for `describe.skipIf(labSkipReason)`. A lab that cannot run is not a reason to
 * skip: the test run fails (see vitest/gate.ts), and so does `Lab.create`.
 */
export const labSkipReason: string | undefined = (() => {
	let requested: boolean;
	try {
		requested = skipLabRequested(process.env[SKIP_LAB_VARIABLE]);
	} catch {
		// A bad value: not a request to skip. The gate turns it into a failure with the message.
		requested = false;
	}
	const gate = decideLabGate(requested, labUnavailable);
	return gate.action === "skip" ? gate.reason : undefined;
})();
