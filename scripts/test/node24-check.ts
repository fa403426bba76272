// Vitest global setup for every suite (vitest.config.ts and
// docker/test/vitest.config.ts): the tests and everything they start run on
// Node 24, the project's runtime (scripts/setup.sh installs it into
// .tools/node). Tests start processes with process.execPath, or `node` from
// PATH, so both are checked. Anything else stops the run with one line.
import { execFileSync } from "node:child_process";

const REQUIRED_MAJOR = "24";
const HOW =
	"run the tests through the package.json scripts ('pnpm test [files]'), which use .tools/node";

function major(version: string): string {
	return version.replace(/^v/, "").split(".")[0] ?? "";
}

function stop(line: string): never {
	process.stderr.write(`node24-check: ${line}\n`);
	process.exit(1);
}

export default function checkNode24(): void {
	if (major(process.versions.node) !== REQUIRED_MAJOR) {
		stop(`the tests run on Node ${process.versions.node}, not ${REQUIRED_MAJOR}: ${HOW}`);
	}
	let onPath: string;
	try {
		onPath = execFileSync("node", ["-p", "process.versions.node"], { encoding: "utf8" }).trim();
	} catch {
		stop(`no 'node' on PATH: ${HOW}`);
	}
	if (major(onPath) !== REQUIRED_MAJOR) {
		stop(`'node' on PATH is Node ${onPath}, not ${REQUIRED_MAJOR}: ${HOW}`);
	}
}
