// The compose deployment: image sizes, and the time from `docker-compose up -d`
// to every service answering (its port serves requests) and to every container
// reporting healthy (docker's HEALTHCHECK, probed every 5 s as the compose file
// sets). Images are built first the way CI builds them (scripts/ci/docker-images.sh,
// cached). Baselines in the same run: the Node base image's size; a trivial
// HTTP server container from the same base image, from `docker run -d` to its
// answer; and the three services started as plain node processes on the host,
// to their answers. Published ports are bound to 127.0.0.1, the stack's
// network is 198.18.203.0/24. Needs root (it starts dockerd when none runs).
// Usage: pnpm bench compose-up [runs=3]
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, log, numberArg, repoRoot, round } from "./lib-control-plane.js";

const runs = numberArg(1, "runs", 3);
const PROJECT = "starlingbench";
const PREFIX = "starling-ci";
const SUBNET = "198.18.203.0/24";
const HOST = "127.0.0.1";
const HEALTH_INTERVAL_S = 5;
/** The stack's containers; coturn-alt runs the coturn image on a second port. */
const SERVICES = ["management", "signal", "relay", "coturn", "coturn-alt"] as const;
const IMAGES = ["management", "signal", "relay", "coturn"] as const;

function sh(command: string, args: string[], timeoutMs = 600_000): Promise<string> {
	return new Promise((resolve, reject) => {
		execFile(
			command,
			args,
			{ cwd: repoRoot, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
			(err, stdout, stderr) => {
				if (err) reject(new Error(`${command} ${args.join(" ")}: ${stderr.trim() || err.message}`));
				else resolve(stdout);
			},
		);
	});
}

const work = mkdtempSync(join(tmpdir(), "starling-bench-compose-"));
const envFile = join(work, "compose.env");
writeFileSync(
	envFile,
	[
		`STARLING_PUBLIC_HOST=${HOST}`,
		`STARLING_RELAY_SECRET=${randomBytes(24).toString("base64")}`,
		`STARLING_BIND_ADDRESS=${HOST}`,
		`STARLING_STUN_BIND_ADDRESS=${HOST}`,
		`STARLING_CI_SUBNET=${SUBNET}`,
		`STARLING_IMAGE_PREFIX=${PREFIX}`,
		"",
	].join("\n"),
);
const compose = (...args: string[]) =>
	sh("docker-compose", [
		"-p",
		PROJECT,
		"-f",
		"docker/docker-compose.yml",
		"-f",
		"docker/test/compose.ci.yml",
		"--env-file",
		envFile,
		...args,
	]);

// --- probes: does each service serve a request? ---

async function httpOk(url: string): Promise<boolean> {
	try {
		const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
		await res.arrayBuffer();
		return res.status === 200;
	} catch {
		return false;
	}
}

/** A call to a method no server has: an HTTP/2 200 with a gRPC status means gRPC is served. */
function grpcAnswers(port: number): Promise<boolean> {
	return new Promise((resolve) => {
		const session = connect(`http://${HOST}:${port}`);
		const finish = (ok: boolean) => {
			clearTimeout(timer);
			session.destroy();
			resolve(ok);
		};
		const timer = setTimeout(() => finish(false), 1000);
		session.on("error", () => finish(false));
		session.on("close", () => finish(false));
		const stream = session.request({
			":method": "POST",
			":path": "/starling.bench.v1.None/Check",
			"content-type": "application/grpc",
			te: "trailers",
		});
		stream.on("response", (headers) => finish(headers[":status"] === 200));
		stream.on("error", () => finish(false));
		stream.on("close", () => finish(false));
		stream.end(Buffer.alloc(5));
	});
}

/** A STUN binding request; any answer with our transaction id counts. */
function stunAnswers(port: number): Promise<boolean> {
	return new Promise((resolve) => {
		const socket = createSocket("udp4");
		const request = Buffer.alloc(20);
		request.writeUInt16BE(0x0001, 0);
		request.writeUInt32BE(0x2112a442, 4);
		randomBytes(12).copy(request, 8);
		const finish = (ok: boolean) => {
			clearTimeout(timer);
			socket.close();
			resolve(ok);
		};
		const timer = setTimeout(() => finish(false), 500);
		socket.on("message", (msg) => finish(msg.subarray(8, 20).equals(request.subarray(8, 20))));
		socket.on("error", () => finish(false));
		socket.send(request, port, HOST);
	});
}

async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 120_000) {
	const deadline = Date.now() + timeoutMs;
	while (!(await probe())) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((r) => setTimeout(r, 50));
	}
}

const controlPlaneAnswers = (ports: { management: number; signal: number; relay: number }) =>
	Promise.all([
		httpOk(`http://${HOST}:${ports.management}/api/openapi.json`),
		grpcAnswers(ports.signal),
		httpOk(`http://${HOST}:${ports.relay}/healthz`),
	]).then((all) => all.every(Boolean));

async function allHealthy(): Promise<boolean> {
	const ids = (await compose("ps", "-q")).trim().split("\n").filter(Boolean);
	if (ids.length !== SERVICES.length) return false;
	const states = (await sh("docker", ["inspect", "-f", "{{.State.Health.Status}}", ...ids]))
		.trim()
		.split("\n");
	return states.every((s) => s === "healthy");
}

// --- the measurements ---

async function composeUpOnce(): Promise<{
	returned_s: number;
	ready_s: number;
	healthy_s: number;
}> {
	await compose("down", "-v", "--remove-orphans", "--timeout", "10");
	const started = performance.now();
	await compose("up", "-d", "--no-build");
	const returnedAt = performance.now();
	const ports = { management: 33073, signal: 10000, relay: 33080 };
	let readyAt = 0;
	const ready = (async () => {
		await waitUntil("the stack to answer", async () =>
			(await controlPlaneAnswers(ports)) && (await stunAnswers(3478)) ? stunAnswers(3479) : false,
		);
		readyAt = performance.now();
	})();
	await waitUntil("all containers healthy", allHealthy);
	const healthyAt = performance.now();
	await ready;
	return {
		returned_s: (returnedAt - started) / 1000,
		ready_s: (readyAt - started) / 1000,
		healthy_s: (healthyAt - started) / 1000,
	};
}

async function trivialContainerOnce(baseImage: string): Promise<number> {
	const port = await freePort();
	const name = `${PROJECT}-baseline`;
	await sh("docker", ["rm", "-f", name]).catch(() => undefined);
	const started = performance.now();
	await sh("docker", [
		"run",
		"-d",
		"--rm",
		"--name",
		name,
		"-p",
		`${HOST}:${port}:8080`,
		baseImage,
		"node",
		"-e",
		'require("http").createServer((q, s) => s.end("ok")).listen(8080)',
	]);
	await waitUntil("the trivial container", () => httpOk(`http://${HOST}:${port}/`));
	const seconds = (performance.now() - started) / 1000;
	await sh("docker", ["rm", "-f", name]);
	return seconds;
}

async function plainProcessesOnce(): Promise<number> {
	const ports = { management: await freePort(), signal: await freePort(), relay: await freePort() };
	const secret = randomBytes(24).toString("base64");
	const dataDir = mkdtempSync(join(work, "management-"));
	const env = { ...process.env, STARLING_LOG_LEVEL: "warn" };
	const started = performance.now();
	const children: ChildProcess[] = [
		spawn(process.execPath, [join(repoRoot, "apps/management/dist/main.js")], {
			env: {
				...env,
				STARLING_DATA_DIR: dataDir,
				STARLING_MANAGEMENT_LISTEN: `${HOST}:${ports.management}`,
				STARLING_PUBLIC_HOST: HOST,
				STARLING_RELAY_SECRET: secret,
			},
			stdio: "ignore",
		}),
		spawn(process.execPath, [join(repoRoot, "apps/signal/dist/main.js")], {
			env: { ...env, STARLING_SIGNAL_LISTEN: `${HOST}:${ports.signal}` },
			stdio: "ignore",
		}),
		spawn(process.execPath, [join(repoRoot, "apps/relay/dist/main.js")], {
			env: {
				...env,
				STARLING_RELAY_LISTEN: `${HOST}:${ports.relay}`,
				STARLING_RELAY_SECRET: secret,
			},
			stdio: "ignore",
		}),
	];
	try {
		await waitUntil("the plain processes", () => controlPlaneAnswers(ports));
		return (performance.now() - started) / 1000;
	} finally {
		await Promise.all(
			children.map(
				(c) =>
					new Promise<void>((resolve) => {
						if (c.exitCode !== null) return resolve();
						c.once("exit", () => resolve());
						c.kill("SIGTERM");
					}),
			),
		);
	}
}

const median = (values: number[]) => {
	const sorted = [...values].sort((a, b) => a - b);
	return sorted[Math.floor(sorted.length / 2)]!;
};

async function main(): Promise<void> {
	await sh("sh", ["scripts/ci/docker-daemon.sh", "start"]);
	try {
		log("building images (cached after the first build)");
		const buildStarted = performance.now();
		await sh("sh", ["scripts/ci/docker-images.sh"]);
		const buildSeconds = (performance.now() - buildStarted) / 1000;
		const baseImage = (await sh("sh", ["scripts/ci/docker-base-image.sh"])).trim();

		const sizeMb = async (image: string) =>
			round(
				Number((await sh("docker", ["image", "inspect", "-f", "{{.Size}}", image])).trim()) / 1e6,
				1,
			);
		const images: Record<string, number> = {};
		for (const s of IMAGES) images[s] = await sizeMb(`${PREFIX}/${s}:local`);
		const baseMb = await sizeMb(baseImage);
		log(`image sizes (MB): ${JSON.stringify(images)}; base ${baseImage}: ${baseMb}`);

		const up: { returned_s: number; ready_s: number; healthy_s: number }[] = [];
		const container: number[] = [];
		const processes: number[] = [];
		for (let i = 0; i < runs; i++) {
			up.push(await composeUpOnce());
			container.push(await trivialContainerOnce(baseImage));
			processes.push(await plainProcessesOnce());
			log(
				`run ${i + 1}/${runs}: compose ready ${round(up[i]!.ready_s)} s, healthy ${round(up[i]!.healthy_s)} s; trivial container ${round(container[i]!)} s; plain processes ${round(processes[i]!)} s`,
			);
		}
		const readyS = median(up.map((u) => u.ready_s));
		const healthyS = median(up.map((u) => u.healthy_s));
		const containerS = median(container);
		const processesS = median(processes);
		console.log(
			JSON.stringify({
				bench: "compose-up",
				runs,
				image_mb: images,
				base_image_mb: baseMb,
				largest_service_to_base_ratio: round(
					Math.max(images.management!, images.signal!, images.relay!) / baseMb,
					2,
				),
				build_s: round(buildSeconds, 1),
				up_command_s: round(median(up.map((u) => u.returned_s))),
				up_to_ready_s: round(readyS),
				up_to_healthy_s: round(healthyS),
				healthcheck_interval_s: HEALTH_INTERVAL_S,
				baseline_trivial_container_ready_s: round(containerS),
				baseline_plain_processes_ready_s: round(processesS),
				ready_to_plain_processes_ratio: round(readyS / processesS),
				all_ready_s: up.map((u) => round(u.ready_s)),
				all_healthy_s: up.map((u) => round(u.healthy_s)),
			}),
		);
	} finally {
		await compose("down", "-v", "--remove-orphans", "--timeout", "10").catch(() => undefined);
		rmSync(work, { recursive: true, force: true });
		await sh("sh", ["scripts/ci/docker-daemon.sh", "stop"]);
	}
}

await main();
