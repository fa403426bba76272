// The project runs on Node 24 (scripts/setup.sh installs it into .tools/node;
// the package.json scripts use it through scripts/node24.sh). These checks
// stop a script or a test run with one line when it was started on another
// Node, such as the machine's own Node 20, instead of running on it silently.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** The major of the version scripts/node-version pins (the one setup.sh installs). */
const REQUIRED_MAJOR = major(
	readFileSync(new URL("./node-version", import.meta.url), "utf8").trim(),
);
const HOW = "run it through its package.json script (they use .tools/node) or scripts/node24.sh";

function major(version) {
	return version.replace(/^v/, "").split(".")[0];
}

function stop(who, line) {
	process.stderr.write(`${who}: ${line}\n`);
	process.exit(1);
}

/** Stops this process unless it runs on Node 24. */
export function requireNode24(who) {
	if (major(process.versions.node) !== REQUIRED_MAJOR) {
		stop(who, `runs on Node ${REQUIRED_MAJOR}, this is ${process.version}: ${HOW}`);
	}
}

/**
 * Vitest global setup (vitest.config.ts, docker/test/vitest.config.ts): tests
 * start processes with process.execPath or with `node` from PATH, so both
 * must be Node 24.
 */
export default function checkTestsRunOnNode24() {
	requireNode24("tests");
	let onPath = "";
	try {
		onPath = execFileSync("node", ["-p", "process.versions.node"], { encoding: "utf8" }).trim();
	} catch {
		stop("tests", `no 'node' on PATH: ${HOW}`);
	}
	if (major(onPath) !== REQUIRED_MAJOR) {
		stop("tests", `'node' on PATH is Node ${onPath}, not ${REQUIRED_MAJOR}: ${HOW}`);
	}
}
