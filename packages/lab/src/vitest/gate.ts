/**
 * vitest globalSetup (see the root vitest.config.ts): before any test file runs, a network lab
 * that cannot run here ends the whole run with exit code 1 and one line naming what is
 * missing, unless the developer asked to skip the lab tests with STARLING_SKIP_LAB=1.
 */
import { decideLabGate, labUnavailable, SKIP_LAB_VARIABLE, skipLabRequested } from "../skip.js";

function failRun(line: string): never {
	// One line, not vitest's error banner: thrown here, vitest would also print a misleading
	// "No test files found".
	process.stderr.write(`${line}\n`);
	process.exit(1);
}

export default function checkLab(): void {
	let requested: boolean;
	try {
		requested = skipLabRequested(process.env[SKIP_LAB_VARIABLE]);
	} catch (error) {
		failRun(error instanceof Error ? error.message : String(error));
	}
	const gate = decideLabGate(requested, labUnavailable);
	if (gate.action === "fail") failRun(gate.line);
}
