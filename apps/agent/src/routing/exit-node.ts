import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { ExitNodeChoice } from "./selection.js";

/** Where the user's exit node choice is kept, read back on every start. */
export interface ExitNodeStore {
	load(): ExitNodeChoice;
	save(choice: ExitNodeChoice): void;
}

/** The choice as it is written: only these shapes are read back; anything else is "auto". */
export function parseExitNodeChoice(text: string): ExitNodeChoice {
	try {
		const value = JSON.parse(text) as { mode?: unknown; name?: unknown };
		if (value.mode === "off") return { mode: "off" };
		if (value.mode === "use" && typeof value.name === "string" && value.name !== "")
			return { mode: "use", name: value.name };
	} catch {
		// A damaged file: fall back to the default, as if none was chosen.
	}
	return { mode: "auto" };
}

/** `exit-node.json` in the state folder, mode 0600, replaced atomically. */
export class ExitNodeFile implements ExitNodeStore {
	readonly path: string;

	constructor(stateDir: string) {
		this.path = join(stateDir, "exit-node.json");
	}

	load(): ExitNodeChoice {
		try {
			return parseExitNodeChoice(readFileSync(this.path, "utf8"));
		} catch {
			return { mode: "auto" };
		}
	}

	save(choice: ExitNodeChoice): void {
		mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
		const tmp = `${this.path}.tmp-${process.pid}`;
		writeFileSync(tmp, `${JSON.stringify(choice)}\n`, { mode: 0o600 });
		chmodSync(tmp, 0o600);
		renameSync(tmp, this.path);
	}
}
