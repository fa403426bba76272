/**
 * Bookkeeping that lets a lab clean up after a crashed earlier run: one state file per lab
 * (its owner process and the holder processes it started), the namespace naming rule, and
 * the code that kills a namespace's processes and deletes it.
 */
import {
	existsSync,
	linkSync,
	mkdirSync,
	readdirSync,
	readFileSync,
	renameSync,
	rmSync,
	statSync,
	unlinkSync,
	writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { debugLog, run, runSync } from "./run.js";

/** Where lab state files live (tmpfs on most systems: gone after a reboot, like the namespaces). */
export const STATE_DIR = "/run/starling-lab";
/** Where `ip netns` keeps its named namespaces. */
export const NETNS_DIR = "/run/netns";
export const NS_PREFIX = "stl-";

const LAB_NAME = /^[a-z0-9]{1,6}$/;
const NODE_NAME = /^[a-z0-9](?:[a-z0-9-]{0,18}[a-z0-9])?$/;
const LAB_NAMESPACE = /^stl-([a-z0-9]{1,6})-[a-z0-9][a-z0-9-]*$/;

export function validateLabName(name: string): void {
	if (!LAB_NAME.test(name)) {
		throw new Error(`invalid lab name ${JSON.stringify(name)}: want 1-6 characters of [a-z0-9]`);
	}
}

export function validateNodeName(name: string): void {
	if (!NODE_NAME.test(name)) {
		throw new Error(
			`invalid lab node name ${JSON.stringify(name)}: want 1-20 characters of [a-z0-9-], not starting or ending with "-"`,
		);
	}
}

export function namespaceName(lab: string, node: string): string {
	return `${NS_PREFIX}${lab}-${node}`;
}

/** The lab a namespace name belongs to, or undefined when it is not a lab namespace. */
export function labOfNamespace(ns: string): string | undefined {
	return LAB_NAMESPACE.exec(ns)?.[1];
}

export interface ProcessRef {
	pid: number;
	/** Start time from /proc/<pid>/stat, so that a reused pid is never mistaken for ours. */
	start: string;
	/** For holders: the node whose namespaces it holds. */
	node?: string;
}

export interface LabState {
	version: 1;
	lab: string;
	owner: ProcessRef;
	/** Directory holding the nodes' state directories. */
	dir: string;
	keepFiles: boolean;
	/** Holder processes (they pin each node's mount namespace). */
	processes: ProcessRef[];
	createdAt: string;
}

/** The start time of a running (non-zombie) process, or undefined. */
export function processStart(pid: number): string | undefined {
	try {
		const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
		const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
		// fields[0] is field 3 (state); field 22 (starttime) is fields[19].
		if (fields[0] === "Z" || fields[0] === "X") return undefined;
		return fields[19];
	} catch {
		return undefined;
	}
}

export function isAlive(ref: ProcessRef): boolean {
	return processStart(ref.pid) === ref.start;
}

export function ownProcessRef(): ProcessRef {
	const start = processStart(process.pid);
	if (start === undefined) throw new Error("cannot read /proc/self/stat");
	return { pid: process.pid, start };
}

function statePath(lab: string): string {
	return join(STATE_DIR, `${lab}.json`);
}

function isLabState(value: unknown): value is LabState {
	if (typeof value !== "object" || value === null) return false;
	const v = value as Partial<LabState>;
	return (
		v.version === 1 &&
		typeof v.lab === "string" &&
		typeof v.owner?.pid === "number" &&
		typeof v.owner.start === "string" &&
		typeof v.dir === "string" &&
		Array.isArray(v.processes)
	);
}

export function readState(lab: string): LabState | undefined {
	try {
		const parsed: unknown = JSON.parse(readFileSync(statePath(lab), "utf8"));
		return isLabState(parsed) ? parsed : undefined;
	} catch {
		return undefined;
	}
}

/** Lab names that have a state file (readable or not). */
function stateFileLabs(): string[] {
	try {
		return readdirSync(STATE_DIR)
			.filter((f) => f.endsWith(".json"))
			.map((f) => f.slice(0, -5))
			.filter((lab) => LAB_NAME.test(lab));
	} catch {
		return [];
	}
}

function writeTemp(state: LabState): string {
	mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
	const temp = join(STATE_DIR, `.${state.lab}.${process.pid}.${Date.now()}.tmp`);
	writeFileSync(temp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
	return temp;
}

/** Creates the lab's state file; false when one exists already. Atomic and exclusive. */
export function claimState(state: LabState): boolean {
	const temp = writeTemp(state);
	try {
		linkSync(temp, statePath(state.lab));
		return true;
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
		throw error;
	} finally {
		rmSync(temp, { force: true });
	}
}

/** Rewrites our own state file (atomic rename). */
export function updateState(state: LabState): void {
	renameSync(writeTemp(state), statePath(state.lab));
}

/** Removes the lab's state file if it still belongs to `owner`. */
export function removeState(lab: string, owner: ProcessRef | undefined): void {
	const current = readState(lab);
	if (
		current &&
		owner &&
		(current.owner.pid !== owner.pid || current.owner.start !== owner.start)
	) {
		return; // someone else's by now
	}
	try {
		unlinkSync(statePath(lab));
	} catch {
		// gone already
	}
}

/** Named lab namespaces (`stl-<lab>-<node>`) that exist now. */
export function listLabNamespaces(lab?: string): string[] {
	let names: string[];
	try {
		names = readdirSync(NETNS_DIR);
	} catch {
		return [];
	}
	return names.filter((ns) => {
		const owner = labOfNamespace(ns);
		return owner !== undefined && (lab === undefined || owner === lab);
	});
}

function namespaceInode(path: string): string | undefined {
	try {
		const s = statSync(path);
		return `${s.dev}:${s.ino}`;
	} catch {
		return undefined;
	}
}

/** True when the named namespace is not our own network namespace (never kill in there). */
function safeToKillIn(ns: string): boolean {
	const inode = namespaceInode(join(NETNS_DIR, ns));
	if (inode === undefined) return false;
	if (inode === namespaceInode("/proc/self/ns/net") || inode === namespaceInode("/proc/1/ns/net")) {
		debugLog(`refusing to kill processes in ${ns}: it is the root network namespace`);
		return false;
	}
	return true;
}

function parsePids(text: string): number[] {
	return text
		.split(/\s+/)
		.filter((t) => /^[0-9]+$/.test(t))
		.map(Number)
		.filter((pid) => pid > 1 && pid !== process.pid);
}

export async function namespacePids(ns: string): Promise<number[]> {
	if (!safeToKillIn(ns)) return [];
	const result = await run("ip", ["netns", "pids", ns], { allowFailure: true, timeoutMs: 10_000 });
	return parsePids(result.stdout);
}

function killQuietly(pid: number): void {
	if (pid <= 1 || pid === process.pid) return;
	try {
		process.kill(pid, "SIGKILL");
	} catch {
		// gone
	}
}

async function waitGone(pids: Iterable<number>, timeoutMs: number): Promise<void> {
	const pending = new Set(pids);
	const deadline = Date.now() + timeoutMs;
	while (pending.size > 0 && Date.now() < deadline) {
		for (const pid of pending) if (processStart(pid) === undefined) pending.delete(pid);
		if (pending.size > 0) await new Promise((r) => setTimeout(r, 20));
	}
}

/** Kills every process in the namespaces (and the listed ones, if still the same processes), then deletes the namespaces. */
export async function purgeNamespaces(
	namespaces: readonly string[],
	processes: readonly ProcessRef[] = [],
): Promise<void> {
	const pids = new Set<number>();
	for (const ref of processes) if (isAlive(ref)) pids.add(ref.pid);
	for (const pidList of await Promise.all(namespaces.map(namespacePids))) {
		for (const pid of pidList) pids.add(pid);
	}
	for (const pid of pids) killQuietly(pid);
	await waitGone(pids, 3_000);
	await Promise.all(
		namespaces.map((ns) =>
			run("ip", ["netns", "delete", ns], { allowFailure: true, timeoutMs: 10_000 }),
		),
	);
}

/** The same, synchronously, for process-exit handlers. */
export function purgeNamespacesSync(
	namespaces: readonly string[],
	processes: readonly ProcessRef[] = [],
): void {
	for (const ref of processes) if (isAlive(ref)) killQuietly(ref.pid);
	for (const ns of namespaces) {
		if (!safeToKillIn(ns)) continue;
		for (const pid of parsePids(runSync("ip", ["netns", "pids", ns]).stdout)) killQuietly(pid);
	}
	for (const ns of namespaces) runSync("ip", ["netns", "delete", ns]);
}

/** True for directories this package creates (…/starling-lab/<lab>), so a corrupt state file can't make us delete anything else. */
export function isLabDir(dir: string, lab: string): boolean {
	return dir.startsWith("/") && basename(dir) === lab && basename(dirname(dir)) === "starling-lab";
}

export function removeLabDir(dir: string, lab: string): void {
	if (isLabDir(dir, lab) && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
}

/** Cleans up one lab whose owner is gone: its processes, namespaces, files and state file. */
async function purgeDeadLab(lab: string): Promise<void> {
	const state = readState(lab);
	if (state && isAlive(state.owner)) return; // came back to life: a new run claimed the name
	debugLog(
		`removing leftovers of lab ${lab} (owner ${state ? state.owner.pid : "unknown"} is gone)`,
	);
	await purgeNamespaces(listLabNamespaces(lab), state?.processes ?? []);
	if (state && !state.keepFiles) removeLabDir(state.dir, lab);
	removeState(lab, state?.owner);
}

/**
 * Removes what crashed runs left behind: every lab whose owner process is dead (its
 * namespaces, processes, files, state file) and every `stl-<lab>-*` namespace no live lab
 * claims. Labs of live processes are left alone. Returns the lab names cleaned up.
 *
 * Safe against concurrent creators because a lab writes its state file before it creates
 * any namespace, and this lists namespaces before it reads state files.
 */
export async function removeLeftovers(): Promise<string[]> {
	const namespaces = listLabNamespaces();
	const live = new Set<string>();
	const dead: string[] = [];
	for (const lab of stateFileLabs()) {
		const state = readState(lab);
		if (state && isAlive(state.owner)) live.add(lab);
		else dead.push(lab);
	}
	for (const ns of namespaces) {
		const lab = labOfNamespace(ns);
		if (lab !== undefined && !live.has(lab) && !dead.includes(lab)) dead.push(lab);
	}
	await Promise.all(dead.map(purgeDeadLab));
	return dead;
}

type Destroyable = { destroySync(): void };

const liveLabs = new Set<Destroyable>();
const SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
const signalHandlers = new Map<NodeJS.Signals, () => void>();
let exitHandlerInstalled = false;

function destroyAllSync(): void {
	for (const lab of [...liveLabs]) {
		try {
			lab.destroySync();
		} catch {
			// best effort while exiting
		}
	}
	liveLabs.clear();
}

/** Makes sure the lab is torn down when the process exits or gets SIGINT/SIGTERM/SIGHUP. */
export function registerForExit(lab: Destroyable): void {
	liveLabs.add(lab);
	if (!exitHandlerInstalled) {
		exitHandlerInstalled = true;
		process.on("exit", destroyAllSync);
	}
	for (const signal of SIGNALS) {
		if (signalHandlers.has(signal)) continue;
		const handler = () => {
			destroyAllSync();
			for (const [s, h] of signalHandlers) process.removeListener(s, h);
			signalHandlers.clear();
			// Nobody else handles it: die of the signal, as we would have without our handler.
			if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
		};
		signalHandlers.set(signal, handler);
		process.on(signal, handler);
	}
}

export function unregisterForExit(lab: Destroyable): void {
	liveLabs.delete(lab);
	if (liveLabs.size === 0) {
		for (const [s, h] of signalHandlers) process.removeListener(s, h);
		signalHandlers.clear();
	}
}
