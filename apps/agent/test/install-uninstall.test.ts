// The release artifact, not the repo's dist: built by scripts/release/build-agent.mjs,
// extracted, and run in lab hosts. Two agents join a real control plane and ping
// each other (the bundled ICE worker and native addon make the direct path);
// then `starling service uninstall` removes what a killed daemon left behind:
// its WireGuard interface (and wireguard-go), its nftables tables and the unit,
// keeping the state unless --purge. The install script itself is tested in a
// clean Debian root by scripts/release/test-install.sh.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Host, Lab, type LabProcess, labSkipReason } from "@starling/lab";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControlPlane, waitFor } from "./fixture.js";

const ROOT = resolve(__dirname, "../../..");
const VERSION = (
	JSON.parse(readFileSync(join(ROOT, "apps/agent/package.json"), "utf8")) as { version: string }
).version;

// Inside each lab host /var/lib/starling is that host's own folder and /run its own tmpfs.
const ENV = {
	STARLING_DATA_DIR: "/var/lib/starling/agent",
	STARLING_SOCKET: "/run/starling.sock",
	STARLING_SYSTEMD_DIR: "/var/lib/starling/systemd",
};

interface StatusJson {
	overlay_address: string;
	peers_connected: number;
	peers?: { connection_state: string; path_type: string }[];
}

describe.skipIf(labSkipReason)("the release artifact in lab hosts", () => {
	let work = "";
	let cli = "";
	let release = "";
	let lab: Lab;
	let ctl: ControlPlane;
	const hosts: Host[] = [];
	const daemons = new Map<Host, LabProcess>();

	const starling = (host: Host, args: string[]) =>
		host.exec(cli, args, { env: ENV, allowFailure: true, timeoutMs: 60_000 });

	async function status(host: Host): Promise<StatusJson> {
		const r = await starling(host, ["status", "--json", "--detail"]);
		expect(r.exitCode, r.stderr).toBe(0);
		return JSON.parse(r.stdout) as StatusJson;
	}

	async function startDaemon(host: Host): Promise<void> {
		const daemon = host.spawn(cli, ["service", "run"], { name: `agent-${host.name}`, env: ENV });
		daemons.set(host, daemon);
		await daemon.waitForOutput(/daemon listening/, 10_000);
	}

	beforeAll(async () => {
		work = mkdtempSync(join(tmpdir(), "starling-release-"));
		const tarball = execFileSync(
			process.execPath,
			[join(ROOT, "scripts/release/build-agent.mjs"), "--out", work],
			{ encoding: "utf8" },
		)
			.trim()
			.split("\n")
			.pop()!;
		execFileSync("tar", ["-C", work, "-xzf", tarball]);
		const folder = readdirSync(work).find(
			(f) => f.startsWith("starling-agent-") && !f.endsWith(".gz"),
		);
		release = join(work, folder!);
		cli = join(release, "bin/starling");

		lab = await Lab.create("rel");
		const lan = await lab.lan("lan", "198.18.30.0/24");
		// No relay: the agents must connect directly, through the bundled ICE worker.
		ctl = new ControlPlane(await lab.host("ctl", { lan }));
		await ctl.start();
		for (const name of ["a", "b"]) hosts.push(await lab.host(name, { lan }));
		// `service uninstall` runs `systemctl disable`, which without a running
		// systemd edits /etc/systemd/system directly: give each host its own, so
		// a machine that has Starling installed keeps its unit.
		for (const host of hosts) {
			const present = await host.exec("test", ["-d", "/etc/systemd/system"], {
				allowFailure: true,
			});
			if (present.exitCode === 0)
				await host.exec("mount", ["-t", "tmpfs", "lab-systemd", "/etc/systemd/system"]);
		}
		for (const host of hosts) await startDaemon(host);
	}, 120_000);

	afterAll(async () => {
		await lab?.destroy();
		if (work) rmSync(work, { recursive: true, force: true });
	}, 30_000);

	it("two agents from the artifact join and ping each other over a direct path", async () => {
		const version = await starling(hosts[0]!, ["version"]);
		expect(version.stdout.trim()).toBe(VERSION);
		const key = await ctl.createSetupKey("release");
		for (const host of hosts) {
			const r = await starling(host, ["up", "--management-url", ctl.url, "--setup-key", key]);
			expect(r.exitCode, `${r.stderr}\n${daemons.get(host)?.output()}`).toBe(0);
		}
		const [a, b] = hosts as [Host, Host];
		const ipOf = async (h: Host) => (await status(h)).overlay_address.split("/")[0]!;
		const [ipA, ipB] = [await ipOf(a), await ipOf(b)];
		await waitFor("a pings b", async () =>
			(await a.ping(ipB, { count: 1, timeoutSeconds: 1 })) ? true : undefined,
		);
		await waitFor("b pings a", async () =>
			(await b.ping(ipA, { count: 1, timeoutSeconds: 1 })) ? true : undefined,
		);
		const s = await waitFor("a's peer connected", async () => {
			const st = await status(a);
			return st.peers_connected === 1 ? st : undefined;
		});
		expect(s.peers?.[0]?.path_type).toBe("p2p");
	}, 90_000);

	it("service install writes a unit that runs the artifact's own node and bundle", async () => {
		const a = hosts[0]!;
		const r = await starling(a, ["service", "install"]);
		expect(r.exitCode, r.stderr).toBe(0);
		const unit = await a.exec("cat", [`${ENV.STARLING_SYSTEMD_DIR}/starling.service`]);
		expect(unit.stdout).toContain(
			// The daemon's V8 flags (apps/agent/src/daemon/node-flags.ts) sit between node and the bundle.
			`ExecStart=${release}/bin/node --max-semi-space-size=1 ${release}/lib/starling.js service run`,
		);
		expect(unit.stdout).toContain(`Environment=STARLING_DATA_DIR=${ENV.STARLING_DATA_DIR}`);
	});

	it("uninstall refuses while a daemon outside systemd runs, and changes nothing", async () => {
		const a = hosts[0]!;
		const r = await starling(a, ["service", "uninstall"]);
		expect(r.exitCode).toBe(1);
		expect(r.stderr.trim().split("\n")).toHaveLength(1);
		expect(r.stderr).toMatch(/daemon outside systemd still listens on \/run\/starling\.sock/);
		expect((await a.exec("ls", [ENV.STARLING_SYSTEMD_DIR])).stdout).toContain("starling.service");
		expect((await a.exec("ip", ["link", "show", "dev", "starling0"])).exitCode).toBe(0);
	});

	it("uninstall removes what a killed daemon left: interface, wireguard-go, nftables tables, forwarding, unit; keeps the state", async () => {
		const a = hosts[0]!;
		// SIGKILL: the daemon cannot clean up, as after a crash.
		await daemons.get(a)!.kill("SIGKILL");
		// What a routing peer killed while serving a route leaves (management
		// does not hand out routes in this test, so it is laid out by hand):
		// forwarding on, its record of the machine's value, and its table.
		expect((await a.exec("cat", ["/proc/sys/net/ipv4/ip_forward"])).stdout.trim()).toBe("0");
		await a.exec("sh", [
			"-c",
			`umask 077; echo '{"key":"net.ipv4.ip_forward","previous":"0"}' > ${ENV.STARLING_DATA_DIR}/ip-forward.json`,
		]);
		await a.exec("sysctl", ["-q", "-w", "net.ipv4.ip_forward=1"]);
		await a.exec("nft", ["add", "table", "inet", "starling-routing"]);
		const tablesBefore = (await a.exec("nft", ["list", "tables"])).stdout;
		expect(tablesBefore).toContain("table inet starling-firewall");
		expect((await a.exec("ip", ["link", "show", "dev", "starling0"])).exitCode).toBe(0);
		const wgSocket = "/run/wireguard/starling0.sock";
		expect((await a.exec("test", ["-S", wgSocket], { allowFailure: true })).exitCode).toBe(0);
		const key = (await a.exec("cat", [`${ENV.STARLING_DATA_DIR}/private.key`])).stdout;
		const statusSocket = "/run/starling-status.sock";
		expect((await a.exec("test", ["-S", statusSocket], { allowFailure: true })).exitCode).toBe(0);

		const r = await starling(a, ["service", "uninstall"]);
		expect(r.exitCode, r.stderr).toBe(0);
		expect(r.stdout).toContain("Removed the starling service");
		expect(r.stdout).toContain("Removed interface starling0");
		const ours = ["starling-paths", "starling-firewall", "starling-routing"].filter((t) =>
			tablesBefore.includes(`table inet ${t}\n`),
		);
		expect(r.stdout).toContain(`Removed nftables tables: ${ours.join(", ")}`);
		expect(r.stdout).toContain(`Kept the state in ${ENV.STARLING_DATA_DIR}`);
		expect(r.stdout).toContain("Gave net.ipv4.ip_forward back");
		expect((await a.exec("cat", ["/proc/sys/net/ipv4/ip_forward"])).stdout.trim()).toBe("0");
		expect(
			(
				await a.exec("test", ["-e", `${ENV.STARLING_DATA_DIR}/ip-forward.json`], {
					allowFailure: true,
				})
			).exitCode,
		).not.toBe(0);

		expect(
			(await a.exec("ip", ["link", "show", "dev", "starling0"], { allowFailure: true })).exitCode,
		).not.toBe(0);
		expect((await a.exec("nft", ["list", "tables"])).stdout).not.toMatch(/starling/);
		for (const socket of [ENV.STARLING_SOCKET, statusSocket]) {
			expect((await a.exec("test", ["-e", socket], { allowFailure: true })).exitCode).not.toBe(0);
		}
		// Deleting the link ended wireguard-go, which removes its socket on exit.
		await waitFor("wireguard-go gone", async () =>
			(await a.exec("test", ["-e", wgSocket], { allowFailure: true })).exitCode !== 0
				? true
				: undefined,
		);
		expect((await a.exec("ls", [ENV.STARLING_SYSTEMD_DIR])).stdout).not.toContain(
			"starling.service",
		);
		expect((await a.exec("cat", [`${ENV.STARLING_DATA_DIR}/private.key`])).stdout).toBe(key);

		// Nothing left: a second uninstall is fine and says so.
		const again = await starling(a, ["service", "uninstall"]);
		expect(again.exitCode, again.stderr).toBe(0);
		expect(again.stdout).toContain("No starling service was installed");
		expect(again.stdout).not.toContain("Removed interface");
	}, 30_000);

	it("uninstall --purge deletes the state; the other agent is untouched", async () => {
		const [a, b] = hosts as [Host, Host];
		const r = await starling(a, ["service", "uninstall", "--purge"]);
		expect(r.exitCode, r.stderr).toBe(0);
		expect(r.stdout).toContain(`Deleted the state in ${ENV.STARLING_DATA_DIR}`);
		expect(
			(await a.exec("test", ["-e", ENV.STARLING_DATA_DIR], { allowFailure: true })).exitCode,
		).not.toBe(0);
		expect((await status(b)).overlay_address).toMatch(/^100\./);
		expect((await b.exec("ip", ["link", "show", "dev", "starling0"])).exitCode).toBe(0);
	});

	it("refuses to purge a folder that is not a state folder", async () => {
		const r = await starling(hosts[0]!, [
			"service",
			"uninstall",
			"--purge",
			"--state-dir",
			"/var/lib",
		]);
		expect(r.exitCode).toBe(1);
		expect(r.stderr.trim()).toBe("starling: refusing to purge /var/lib: not a state folder");
	});
});
