import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RestHarness } from "./helpers-rest.js";

// /api/openapi.json, as the running API serves it, linted by Redocly CLI
// with its `recommended` ruleset: an error fails the test, and so does any
// warning that is not one of the two explained below.

const REDOCLY = resolve(import.meta.dirname, "../../../node_modules/.bin/redocly");

/** Warnings that stay, each for a reason that is not the document's to fix. */
const ACCEPTED_WARNINGS = new Set([
	// The project has not chosen a license: the document must not claim one.
	"info-license #/info",
	// The document itself answers every GET: it has no 4xx to document.
	"operation-4xx-response #/paths/~1api~1openapi.json/get/responses",
]);

interface LintResult {
	exitCode: number;
	totals: { errors: number; warnings: number };
	problems: {
		ruleId: string;
		severity: string;
		message: string;
		location: { pointer: string }[];
	}[];
}

let dir: string;
let doc: Record<string, unknown>;

/** Lints `document` in a directory of its own (no redocly.yaml of the repository applies). */
async function lint(document: unknown): Promise<LintResult> {
	const file = join(dir, `openapi-${Math.random().toString(36).slice(2)}.json`);
	writeFileSync(file, JSON.stringify(document));
	const run = promisify(execFile);
	const args = ["lint", "--extends=recommended", "--format=json", file];
	const env = { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" };
	let stdout: string;
	let exitCode = 0;
	try {
		({ stdout } = await run(REDOCLY, args, { cwd: dir, env, maxBuffer: 16 << 20 }));
	} catch (err) {
		const e = err as { code?: number; stdout?: string; stderr?: string };
		if (typeof e.code !== "number" || !e.stdout) throw err;
		exitCode = e.code;
		stdout = e.stdout;
	}
	return { exitCode, ...(JSON.parse(stdout) as Omit<LintResult, "exitCode">) };
}

const describeProblem = (p: LintResult["problems"][number]) =>
	`${p.ruleId} ${p.location[0]?.pointer ?? ""}`;

beforeAll(async () => {
	dir = mkdtempSync(join(tmpdir(), "starling-openapi-lint-"));
	const h = await RestHarness.create();
	try {
		const res = await h.request("GET", "/api/openapi.json", { token: null });
		expect(res.status).toBe(200);
		doc = res.json;
	} finally {
		await h.close();
	}
});
afterAll(() => {
	rmSync(dir, { recursive: true, force: true });
});

describe("the OpenAPI document under Redocly's recommended rules", () => {
	it("has no error and no warning but the accepted ones", async () => {
		const result = await lint(doc);
		const unexpected = result.problems
			.filter((p) => p.severity === "error" || !ACCEPTED_WARNINGS.has(describeProblem(p)))
			.map((p) => `${p.severity} ${describeProblem(p)}: ${p.message}`);
		expect(unexpected).toEqual([]);
		expect(result.exitCode).toBe(0);
	});

	it("fails a document with a lint error (the check can fail)", async () => {
		const { servers: _, ...withoutServers } = doc;
		const result = await lint(withoutServers);
		expect(result.exitCode).not.toBe(0);
		expect(result.problems.map((p) => `${p.severity} ${p.ruleId}`)).toContain(
			"error no-empty-servers",
		);
	});

	it("gives every operation a unique operationId", () => {
		const ids = Object.values(doc.paths as Record<string, Record<string, { operationId?: string }>>)
			.flatMap((ops) => Object.values(ops))
			.map((op) => op.operationId);
		expect(ids.every((id) => typeof id === "string" && /^[a-z][A-Za-z]+$/.test(id))).toBe(true);
		expect(new Set(ids).size).toBe(ids.length);
	});
});
