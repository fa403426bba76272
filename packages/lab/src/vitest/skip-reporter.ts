/**
 * vitest reporter (see the root vitest.config.ts): when the lab tests were skipped on request
 * (STARLING_SKIP_LAB=1), prints one line at the end of the run saying how many, in which
 * files, and why. A lab test file is one whose suite is `describe.skipIf(labSkipReason)`.
 */
import { readFileSync } from "node:fs";
import { relative } from "node:path";
import type { Reporter, TestModule } from "vitest/node";
import { labSkipReason } from "../skip.js";
import { type SkippedLabFile, skippedLabSummary } from "./summary.js";

const LAB_SUITE_MARKER = "skipIf(labSkipReason)";

function isLabTestFile(path: string): boolean {
	try {
		return readFileSync(path, "utf8").includes(LAB_SUITE_MARKER);
	} catch {
		return false;
	}
}

export default class LabSkipReporter implements Reporter {
	onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
		if (labSkipReason === undefined) return;
		const skipped: SkippedLabFile[] = [];
		for (const module of testModules) {
			if (!isLabTestFile(module.moduleId)) continue;
			let tests = 0;
			for (const test of module.children.allTests()) {
				if (test.result().state === "skipped") tests++;
			}
			skipped.push({ file: relative(process.cwd(), module.moduleId), tests });
		}
		const line = skippedLabSummary(skipped, labSkipReason);
		if (line !== undefined) process.stdout.write(`${line}\n`);
	}
}
