import { readdirSync, readFileSync } from "node:fs";

/**
 * Kills processes a crashed earlier test run left behind: those whose command
 * line holds `marker` followed by the owner's pid (`<marker><pid>`), when that
 * owner is no longer alive. Servers started by tests carry such a marker.
 */
export function killOrphans(marker: string): number[] {
	const killed: number[] = [];
	for (const entry of readdirSync("/proc")) {
		if (!/^\d+$/.test(entry)) continue;
		let cmdline: string;
		try {
			cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ");
		} catch {
			continue; // gone meanwhile
		}
		const at = cmdline.indexOf(marker);
		if (at < 0) continue;
		const owner = Number(/^\d+/.exec(cmdline.slice(at + marker.length))?.[0]);
		if (!owner || isAlive(owner)) continue;
		try {
			process.kill(Number(entry), "SIGKILL");
			killed.push(Number(entry));
		} catch {
			// already gone
		}
	}
	return killed;
}

export function isAlive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch (err) {
		return (err as NodeJS.ErrnoException).code === "EPERM";
	}
}
