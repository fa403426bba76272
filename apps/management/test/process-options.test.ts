// The management image starts the process with the flags and environment
// process-options.ts gives (the Dockerfile cannot import them).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { MANAGEMENT_NODE_FLAGS, MANAGEMENT_PROCESS_ENV } from "../src/process-options.js";

const dockerfile = readFileSync(resolve(__dirname, "../../../docker/Dockerfile"), "utf8");
const managementStage = dockerfile.slice(
	dockerfile.indexOf("FROM runtime AS management"),
	dockerfile.indexOf("FROM runtime AS signal"),
);

describe("the management image", () => {
	it("starts node with management's flags before main.js", () => {
		const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(managementStage)?.[1];
		expect(entrypoint).toBeDefined();
		expect(JSON.parse(entrypoint!)).toEqual([
			"node",
			...MANAGEMENT_NODE_FLAGS,
			"/app/dist/main.js",
		]);
	});

	it("sets management's process environment", () => {
		for (const [name, value] of Object.entries(MANAGEMENT_PROCESS_ENV)) {
			expect(managementStage).toMatch(new RegExp(`^\\s*(ENV )?${name}=${value}\\b`, "m"));
		}
	});
});
