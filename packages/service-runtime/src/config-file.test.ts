import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, resolveSettings } from "./config-file.js";

const dir = mkdtempSync(join(tmpdir(), "starling-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function configFile(content: string): string {
	const path = join(dir, `config-${++files}.json`);
	writeFileSync(path, content);
	return path;
}

function errorOf(env: NodeJS.ProcessEnv): ConfigError {
	try {
		resolveSettings(env);
	} catch (err) {
		if (err instanceof ConfigError) return err;
		throw err;
	}
	throw new Error("expected a ConfigError");
}

describe("resolveSettings", () => {
	it("keeps only non-empty STARLING_* variables without a file", () => {
		expect(
			resolveSettings({ STARLING_A: "1", STARLING_EMPTY: "", PATH: "/bin", HOME: "/root" }),
		).toEqual({ STARLING_A: "1" });
	});

	it("reads the file's settings as text, lists comma-separated", () => {
		const path = configFile(
			JSON.stringify({
				STARLING_SIGNAL_URL: "http://example.test:10000",
				STARLING_STUN_URLS: ["stun:a.test:3478", "stun:b.test:3478"],
				STARLING_SYNC_FLUSH_MS: 20,
				STARLING_FLAG: true,
			}),
		);
		expect(resolveSettings({ STARLING_CONFIG_FILE: path })).toEqual({
			STARLING_CONFIG_FILE: path,
			STARLING_SIGNAL_URL: "http://example.test:10000",
			STARLING_STUN_URLS: "stun:a.test:3478,stun:b.test:3478",
			STARLING_SYNC_FLUSH_MS: "20",
			STARLING_FLAG: "true",
		});
	});

	it("lets a non-empty environment variable win over the file", () => {
		const path = configFile('{"STARLING_A": "file", "STARLING_B": "file", "STARLING_C": "file"}');
		expect(
			resolveSettings({ STARLING_CONFIG_FILE: path, STARLING_A: "env", STARLING_B: "" }),
		).toMatchObject({ STARLING_A: "env", STARLING_B: "file", STARLING_C: "file" });
	});

	it("refuses a missing, malformed or mistyped file with one line naming the variable", () => {
		const missing = join(dir, "missing.json");
		const cases: [NodeJS.ProcessEnv, RegExp][] = [
			[{ STARLING_CONFIG_FILE: missing }, /^STARLING_CONFIG_FILE cannot be read: ENOENT/],
			[
				{ STARLING_CONFIG_FILE: configFile("{ not json") },
				/^STARLING_CONFIG_FILE .* not valid JSON/,
			],
			[{ STARLING_CONFIG_FILE: configFile("[1, 2]") }, /^STARLING_CONFIG_FILE .* JSON object/],
			[
				{ STARLING_CONFIG_FILE: configFile('{"signal_url": "x"}') },
				/^STARLING_CONFIG_FILE .*"signal_url" is not a STARLING_\* setting$/,
			],
			[
				{ STARLING_CONFIG_FILE: configFile('{"STARLING_CONFIG_FILE": "/other.json"}') },
				/"STARLING_CONFIG_FILE" is not a STARLING_\* setting/,
			],
			[
				{ STARLING_CONFIG_FILE: configFile('{"STARLING_RELAY_URLS": {"a": 1}}') },
				/^STARLING_RELAY_URLS \(in .*\) must be a string/,
			],
			[
				{ STARLING_CONFIG_FILE: configFile('{"STARLING_X": null}') },
				/^STARLING_X \(in .*\) must be a string/,
			],
		];
		for (const [env, expected] of cases) {
			const err = errorOf(env);
			expect(err.message).toMatch(expected);
			expect(err.message).not.toContain("\n");
		}
	});
});
