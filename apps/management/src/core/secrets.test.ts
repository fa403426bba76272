import { describe, expect, it } from "vitest";
import { toDnsLabel, uniqueDnsLabel } from "./dns-label.js";
import {
	hashSecret,
	isWellFormedToken,
	newPersonalAccessToken,
	newSetupKeySecret,
	secretMatches,
} from "./secrets.js";

describe("secrets", () => {
	it("tokens carry a checksum that catches typos", () => {
		const token = newPersonalAccessToken();
		expect(token).toMatch(/^stp_[0-9A-Za-z]{36}$/);
		expect(isWellFormedToken(token)).toBe(true);
		const typo = token.slice(0, 10) + (token[10] === "a" ? "b" : "a") + token.slice(11);
		expect(isWellFormedToken(typo)).toBe(false);
		expect(isWellFormedToken(token.slice(0, -1))).toBe(false);
	});

	it("hash comparison accepts only the same secret", () => {
		const key = newSetupKeySecret();
		expect(key).toMatch(/^[0-9A-F-]{36}$/);
		const stored = hashSecret(key);
		expect(stored).not.toContain(key);
		expect(secretMatches(key, stored)).toBe(true);
		expect(secretMatches(newSetupKeySecret(), stored)).toBe(false);
		expect(secretMatches(key, "not-hex")).toBe(false);
	});
});

describe("DNS labels", () => {
	it("derives RFC 1123 labels from host names", () => {
		expect(toDnsLabel("Web Server_01.example.com")).toBe("web-server-01");
		expect(toDnsLabel("---")).toBe("peer");
		expect(toDnsLabel("x".repeat(80))).toHaveLength(63);
	});

	it("makes labels unique within an account", () => {
		expect(uniqueDnsLabel("web", new Set())).toBe("web");
		expect(uniqueDnsLabel("web", new Set(["web"]))).toBe("web-1");
		expect(uniqueDnsLabel("web", new Set(["web", "web-1"]))).toBe("web-2");
		const long = "a".repeat(63);
		expect(uniqueDnsLabel(long, new Set([long])).length).toBeLessThanOrEqual(63);
	});
});
