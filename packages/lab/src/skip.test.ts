import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
	decideLabGate,
	type LabHostFacts,
	labUnavailableReason,
	REQUIRED_TOOLS,
	skipLabRequested,
} from "./skip.js";
import { skippedLabSummary } from "./vitest/summary.js";

const ROOT_CAPABILITIES = 0x1ffffffffffn;
const ready: LabHostFacts = {
	platform: "linux",
	effectiveCapabilities: ROOT_CAPABILITIES,
	missingTools: [],
	hasTunDevice: true,
};

describe("why the lab cannot run", () => {
	it("can run as root on Linux with every tool and /dev/net/tun", () => {
		expect(labUnavailableReason(ready)).toBeUndefined();
	});

	it("names each missing precondition in one line", () => {
		expect(labUnavailableReason({ ...ready, platform: "darwin" })).toBe(
			"not Linux (darwin): lab tests need network namespaces",
		);
		expect(labUnavailableReason({ ...ready, effectiveCapabilities: 0n })).toBe(
			"not root: lab tests need CAP_NET_ADMIN",
		);
		expect(labUnavailableReason({ ...ready, effectiveCapabilities: undefined })).toBe(
			"not root: lab tests need CAP_NET_ADMIN",
		);
		// CAP_NET_ADMIN (12) without CAP_SYS_ADMIN (21), as in a container without --privileged.
		expect(labUnavailableReason({ ...ready, effectiveCapabilities: 1n << 12n })).toBe(
			"no CAP_SYS_ADMIN: lab tests need it for namespaces and mounts",
		);
		expect(labUnavailableReason({ ...ready, missingTools: ["wireguard-go"] })).toBe(
			"missing tool: wireguard-go (apt-get install --no-install-recommends wireguard-go)",
		);
		expect(labUnavailableReason({ ...ready, missingTools: ["nsenter", "unshare", "wg"] })).toBe(
			"missing tool: nsenter/unshare/wg (apt-get install --no-install-recommends util-linux wireguard-tools)",
		);
		expect(labUnavailableReason({ ...ready, hasTunDevice: false })).toBe(
			"missing /dev/net/tun: wireguard-go needs it",
		);
	});

	it("property: every missing tool is named, with a package to install", () => {
		fc.assert(
			fc.property(fc.subarray([...REQUIRED_TOOLS], { minLength: 1 }), (missingTools) => {
				const reason = labUnavailableReason({ ...ready, missingTools }) ?? "";
				expect(reason).toMatch(
					/^missing tool: \S+ \(apt-get install --no-install-recommends [a-z0-9 -]+\)$/,
				);
				expect(reason.split(" (")[0]).toBe(`missing tool: ${missingTools.join("/")}`);
				expect(reason).not.toContain("\n");
			}),
		);
	});
});

describe("STARLING_SKIP_LAB", () => {
	it("is a request to skip only when it is 1", () => {
		expect(skipLabRequested("1")).toBe(true);
		for (const value of [undefined, "", "0"]) expect(skipLabRequested(value)).toBe(false);
		for (const value of ["yes", "true", " 1", "2"]) {
			expect(() => skipLabRequested(value)).toThrow(
				`STARLING_SKIP_LAB must be 1 (skip the lab tests) or unset, not "${value}"`,
			);
		}
	});
});

describe("the test run's lab gate", () => {
	it("runs the lab tests when the lab can run and nobody asked to skip", () => {
		expect(decideLabGate(false, undefined)).toEqual({ action: "run" });
	});

	it("fails in one line naming what is missing when the lab cannot run (also as non-root)", () => {
		expect(
			decideLabGate(
				false,
				"missing tool: wireguard-go (apt-get install --no-install-recommends wireguard-go)",
			),
		).toEqual({
			action: "fail",
			line: "the network-lab tests cannot run here: missing tool: wireguard-go (apt-get install --no-install-recommends wireguard-go); set STARLING_SKIP_LAB=1 to skip them on purpose",
		});
		expect(decideLabGate(false, "not root: lab tests need CAP_NET_ADMIN")).toMatchObject({
			action: "fail",
		});
	});

	it("skips only on request, saying whether the lab could have run", () => {
		expect(decideLabGate(true, "not root: lab tests need CAP_NET_ADMIN")).toEqual({
			action: "skip",
			reason:
				"STARLING_SKIP_LAB=1 (here the lab cannot run: not root: lab tests need CAP_NET_ADMIN)",
		});
		expect(decideLabGate(true, undefined)).toEqual({
			action: "skip",
			reason: "STARLING_SKIP_LAB=1 (the lab could run here)",
		});
	});

	it("summarises the skipped lab tests in one line, or says nothing when none were skipped", () => {
		const reason = "STARLING_SKIP_LAB=1 (the lab could run here)";
		expect(
			skippedLabSummary(
				[
					{ file: "packages/lab/src/lab.test.ts", tests: 9 },
					{ file: "apps/agent/test/e2e-lan.test.ts", tests: 1 },
					{ file: "apps/agent/src/netfilter/firewall.test.ts", tests: 0 },
				],
				reason,
			),
		).toBe(
			"skipped 10 network-lab tests in 2 files (apps/agent/test/e2e-lan.test.ts, packages/lab/src/lab.test.ts): STARLING_SKIP_LAB=1 (the lab could run here)",
		);
		expect(skippedLabSummary([{ file: "a.test.ts", tests: 1 }], reason)).toBe(
			`skipped 1 network-lab test in 1 file (a.test.ts): ${reason}`,
		);
		expect(skippedLabSummary([], reason)).toBeUndefined();
		expect(skippedLabSummary([{ file: "a.test.ts", tests: 0 }], reason)).toBeUndefined();
	});
});
