import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { chooseLogFormat, createLogger, LOG_FORMAT_VARIABLE, LogFormatError } from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "starling-log-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const openFds: number[] = [];
afterEach(() => {
	for (const fd of openFds.splice(0)) closeSync(fd);
	delete process.env[LOG_FORMAT_VARIABLE];
});

let files = 0;
/** A log file and its descriptor; what was written is read back with `text()`. */
function logFile(): { fd: number; text(): string } {
	const path = join(dir, `log-${++files}.txt`);
	const fd = openSync(path, "w");
	openFds.push(fd);
	return { fd, text: () => readFileSync(path, "utf8") };
}

describe("chooseLogFormat", () => {
	it("writes readable lines to a terminal and JSON elsewhere when unset or empty", () => {
		expect(chooseLogFormat(undefined, true)).toBe("pretty");
		expect(chooseLogFormat("", true)).toBe("pretty");
		expect(chooseLogFormat(undefined, false)).toBe("json");
		expect(chooseLogFormat("", false)).toBe("json");
	});

	it("lets the setting force either format", () => {
		expect(chooseLogFormat("json", true)).toBe("json");
		expect(chooseLogFormat("pretty", false)).toBe("pretty");
	});

	it("refuses any other value with one line naming the variable", () => {
		for (const bad of ["JSON", "text", "pretty\n", " json"]) {
			expect(() => chooseLogFormat(bad, false)).toThrow(LogFormatError);
			try {
				chooseLogFormat(bad, false);
			} catch (err) {
				const message = (err as Error).message;
				expect(message).toMatch(/^invalid STARLING_LOG_FORMAT: expected json or pretty, got /);
				expect(message).not.toContain("\n");
			}
		}
	});
});

describe("createLogger", () => {
	it("writes one JSON object per event, synchronously, with secrets redacted", () => {
		const file = logFile();
		const logger = createLogger("svc", { level: "info" }, { fd: file.fd, format: "json" });
		logger.child({ component: "rest" }).info({ token: "stp_secret", peers: 2 }, "first");
		// Synchronous: the line is in the file as soon as the call returns.
		const lines = file.text().trim().split("\n");
		expect(lines).toHaveLength(1);
		const event = JSON.parse(lines[0] ?? "") as Record<string, unknown>;
		expect(event).toMatchObject({
			level: 30,
			service: "svc",
			component: "rest",
			token: "[redacted]",
			peers: 2,
			msg: "first",
		});
		expect(file.text()).not.toContain("stp_secret");
	});

	it("writes one readable line per event, synchronously, with the same redaction", () => {
		const file = logFile();
		const logger = createLogger("svc", { level: "info" }, { fd: file.fd, format: "pretty" });
		logger.child({ component: "rest" }).warn({ token: "stp_secret", peers: 2 }, "first");
		expect(file.text()).toMatch(
			/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: svc\/rest: first \{"token":"\[redacted\]","peers":2\}\n$/,
		);
		logger.error({ err: "multi\nline" }, "second");
		logger.info("third");
		const lines = file.text().trim().split("\n");
		expect(lines).toHaveLength(3);
		expect(lines[1]).toMatch(/ ERROR: svc: second \{"err":"multi\\nline"\}$/);
		expect(lines[2]).toMatch(/ INFO: svc: third$/);
		expect(file.text()).not.toContain("stp_secret");
		// No colour codes when the output is not a terminal.
		expect(file.text()).not.toContain("\u001b[");
	});

	it("takes the format from STARLING_LOG_FORMAT, JSON for a file when unset", () => {
		const unset = logFile();
		createLogger("svc", {}, { fd: unset.fd }).info("a");
		expect(JSON.parse(unset.text())).toMatchObject({ msg: "a" });

		process.env[LOG_FORMAT_VARIABLE] = "pretty";
		const forced = logFile();
		createLogger("svc", {}, { fd: forced.fd }).info("b");
		expect(forced.text()).toMatch(/ INFO: svc: b\n$/);

		process.env[LOG_FORMAT_VARIABLE] = "yaml";
		expect(() => createLogger("svc", {}, { fd: logFile().fd })).toThrow(
			'invalid STARLING_LOG_FORMAT: expected json or pretty, got "yaml"',
		);
	});

	it("writes each key once when a child binds a key an ancestor bound, the child's value winning", () => {
		const file = logFile();
		const root = createLogger("svc", { level: "info" }, { fd: file.fd, format: "json" });
		const engine = root.child({ component: "engine", peer: "a" });
		engine.child({ component: "signal" }).info("replaced");
		engine.child({ reqId: 1 }).child({ reqId: 2, token: "stp_secret" }).info("nested");
		engine.info("parent unchanged");
		root.child({ service: "other" }).info("base replaced");
		const lines = file.text().trim().split("\n");
		expect(lines).toHaveLength(4);
		for (const line of lines) {
			for (const key of ["service", "component", "peer", "reqId"]) {
				expect(line.split(`"${key}":`).length, line).toBeLessThanOrEqual(2);
			}
		}
		const events = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
		expect(events[0]).toMatchObject({ service: "svc", component: "signal", peer: "a" });
		expect(events[1]).toMatchObject({ component: "engine", reqId: 2, token: "[redacted]" });
		expect(lines[1]).not.toContain("stp_secret");
		expect(events[2]).toMatchObject({ component: "engine", msg: "parent unchanged" });
		expect(events[3]).toMatchObject({ service: "other", msg: "base replaced" });
		// The order of keys is kept: service first, as pino writes it.
		expect(Object.keys(events[0] ?? {}).slice(0, 5)).toEqual([
			"level",
			"time",
			"service",
			"component",
			"peer",
		]);
	});

	it("writes nothing for a line a streamWrite hook swallows, in both formats", () => {
		for (const format of ["json", "pretty"] as const) {
			const file = logFile();
			const seen: string[] = [];
			const logger = createLogger(
				"svc",
				{
					hooks: {
						streamWrite: (line: string) => {
							seen.push(line);
							return "";
						},
					},
				},
				{ fd: file.fd, format },
			);
			logger.info("captured");
			expect(seen).toHaveLength(1);
			expect(file.text()).toBe("");
		}
	});
});
