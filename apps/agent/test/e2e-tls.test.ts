// Management and signal serving TLS themselves, with certificates from test
// CAs made by openssl: agents (the real daemon and CLI in lab hosts) that
// trust the CAs through NODE_EXTRA_CA_CERTS register over https:// and reach
// each other; an agent that does not trust management's (or signal's) CA
// stops `up` with one line naming the server and the reason.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createTestPki, Lab, labSkipReason, type TestPki } from "@starling/lab";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AgentHost, ControlPlane, waitFor } from "./fixture.js";

describe.skipIf(labSkipReason)("management and signal over TLS", () => {
	let lab: Lab;
	let ctl: ControlPlane;
	let a: AgentHost;
	let b: AgentHost;
	let c: AgentHost;
	let dir: string;
	let managementPki: TestPki;
	let signalPki: TestPki;
	/** Both CAs in one file: what a and b trust. */
	let bothCas: string;

	beforeAll(async () => {
		lab = await Lab.create("tlsag");
		const lan = await lab.lan("lan", "198.18.31.0/24");
		const ctlHost = await lab.host("ctl", { lan });
		dir = mkdtempSync(join(tmpdir(), "starling-e2e-tls-"));
		// Lab hosts run as root in their own mount namespace; the files must be readable there.
		chmodSync(dir, 0o755);
		// Two CAs, so that trusting management's CA alone leaves signal untrusted.
		managementPki = createTestPki(join(dir, "management"), { names: [ctlHost.address] });
		signalPki = createTestPki(join(dir, "signal"), { names: [ctlHost.address] });
		bothCas = join(dir, "both-cas.pem");
		writeFileSync(
			bothCas,
			readFileSync(managementPki.caFile, "utf8") + readFileSync(signalPki.caFile, "utf8"),
		);
		ctl = new ControlPlane(ctlHost, {
			tls: {
				management: managementPki,
				signal: signalPki,
				caFile: managementPki.caFile,
			},
		});
		await ctl.start();
		a = new AgentHost(await lab.host("a", { lan }));
		b = new AgentHost(await lab.host("b", { lan }));
		c = new AgentHost(await lab.host("c", { lan }));
		await Promise.all([
			a.startDaemon({ NODE_EXTRA_CA_CERTS: bothCas }),
			b.startDaemon({ NODE_EXTRA_CA_CERTS: bothCas }),
			// The test runner's own NODE_EXTRA_CA_CERTS (if any) is the system bundle: no test CA.
			c.startDaemon({ NODE_EXTRA_CA_CERTS: "/dev/null" }),
		]);
	}, 60_000);

	afterEach(async (context) => {
		if (context.task.result?.state !== "fail") return;
		for (const x of [a, b, c]) console.error(x?.logs());
		console.error(ctl.management?.output().split("\n").slice(-20).join("\n"));
	});

	afterAll(async () => {
		await lab?.destroy();
		if (dir) rmSync(dir, { recursive: true, force: true });
	}, 30_000);

	it("agents trusting the CAs register over https:// and reach each other", async () => {
		expect(ctl.url).toMatch(/^https:\/\//);
		const key = await ctl.createSetupKey();
		for (const x of [a, b]) {
			const r = await x.starling(["up", "--management-url", ctl.url, "--setup-key", key]);
			expect(r.exitCode, r.stderr).toBe(0);
		}
		const statusOfA = await a.status();
		expect(statusOfA.management.connected).toBe(true);
		await waitFor("a's signal stream over TLS", async () =>
			(await a.status()).signal.connected ? true : undefined,
		);
		const ipOfB = await b.overlayIp();
		await waitFor("a pings b", async () =>
			(await a.host.ping(ipOfB, { count: 1, timeoutSeconds: 1 })) ? true : undefined,
		);
		const peer = (await a.status()).peers?.[0];
		expect(peer?.connection_state).toBe("connected");
	}, 60_000);

	it("an agent that does not trust management's CA stops with one line", async () => {
		const key = await ctl.createSetupKey("untrusted");
		const started = Date.now();
		const r = await c.starling(["up", "--management-url", ctl.url, "--setup-key", key]);
		const tookMs = Date.now() - started;
		expect(r.exitCode).not.toBe(0);
		const lines = r.stderr.trim().split("\n");
		expect(lines, r.stderr).toHaveLength(1);
		console.log(`untrusted management: ${lines[0]}`);
		expect(lines[0]).toMatch(
			new RegExp(
				`^starling: management ${ctl.url.replace(/\./g, "\\.")} presented a certificate this machine does not trust \\(.+\\): add its CA to the system store`,
			),
		);
		// Not a retry loop: it stops as soon as the handshake is refused.
		expect(tookMs).toBeLessThan(10_000);
		expect((await c.status()).state).toBe("down");
	}, 30_000);

	it("an agent trusting management but not signal stops with one line naming signal", async () => {
		await c.daemon?.kill("SIGTERM");
		await c.startDaemon({ NODE_EXTRA_CA_CERTS: managementPki.caFile });
		const key = await ctl.createSetupKey("half-trusted");
		const r = await c.starling(["up", "--management-url", ctl.url, "--setup-key", key]);
		expect(r.exitCode).not.toBe(0);
		const lines = r.stderr.trim().split("\n");
		expect(lines, r.stderr).toHaveLength(1);
		console.log(`untrusted signal: ${lines[0]}`);
		expect(lines[0]).toMatch(
			new RegExp(
				`^starling: signal ${ctl.signalUrl.replace(/\./g, "\\.")} presented a certificate this machine does not trust`,
			),
		);
		// up was undone: no interface left behind.
		const links = await c.host.exec("ip", ["link", "show", "starling0"], { allowFailure: true });
		expect(links.exitCode).not.toBe(0);
	}, 60_000);

	it("a CA in the system store is trusted by the daemon without NODE_EXTRA_CA_CERTS", async () => {
		// OpenSSL's default CA file (SSL_CERT_FILE; on Debian /etc/ssl/certs/ca-certificates.crt,
		// which update-ca-certificates writes) is the system store Node reads only when asked:
		// the daemon asks itself (server-trust.ts). Plain Node would refuse here.
		await c.daemon?.kill("SIGTERM");
		await c.startDaemon({ NODE_EXTRA_CA_CERTS: "/dev/null", SSL_CERT_FILE: bothCas });
		const key = await ctl.createSetupKey("system-store");
		const r = await c.starling(["up", "--management-url", ctl.url, "--setup-key", key]);
		expect(r.exitCode, r.stderr).toBe(0);
		expect((await c.status()).management.connected).toBe(true);
		expect((await c.starling(["down"])).exitCode).toBe(0);
	}, 60_000);

	it("a daemon restarted without the CA stops coming back up, with the line in its status", async () => {
		// a was up: a restart brings it back up on its own (wantUp), now without trusting the CA.
		await a.daemon?.kill("SIGTERM");
		await a.startDaemon({ NODE_EXTRA_CA_CERTS: "/dev/null" });
		const giveUp = /coming back up failed; not retrying/;
		const line = await waitFor("a's daemon gives up coming back up", async () =>
			a.daemon
				?.output()
				.split("\n")
				.find((l) => giveUp.test(l)),
		);
		expect(JSON.parse(line).error).toMatch(
			/^management https:\/\/\S+ presented a certificate this machine does not trust/,
		);
		const status = JSON.parse((await a.starling(["status", "--json"])).stdout) as {
			state: string;
			management: { error: string };
		};
		expect(status.state).toBe("down");
		expect(status.management.error).toMatch(/presented a certificate this machine does not trust/);
		// No retry loop: nothing more is attempted.
		await new Promise((r) => setTimeout(r, 3_000));
		const attempts = a.daemon
			?.output()
			.split("\n")
			.filter((l) => /coming back up/.test(l));
		expect(attempts).toHaveLength(1);
	}, 30_000);

	it("a running agent whose management turns up with an untrusted certificate says so in its status", async () => {
		// b is still up from the first test. Management restarts with a certificate of a third CA.
		const thirdPki = createTestPki(join(dir, "third"), { names: [ctl.host.address] });
		await ctl.management?.kill("SIGTERM");
		const restarted = new ControlPlane(ctl.host, {
			tls: { management: thirdPki, signal: signalPki, caFile: thirdPki.caFile },
		});
		await restarted.startManagement();
		try {
			const error = await waitFor(
				"b's status names the refused certificate",
				async () => {
					const status = JSON.parse((await b.starling(["status", "--json"])).stdout) as {
						management: { connected: boolean; error: string };
					};
					return /presented a certificate this machine does not trust/.test(status.management.error)
						? status.management.error
						: undefined;
				},
				30_000,
				500,
			);
			console.log(`running agent, management's certificate changed: ${error}`);
			expect(error).toMatch(/^management https:\/\/\S+ presented a certificate/);
		} finally {
			await restarted.management?.kill("SIGTERM");
		}
	}, 60_000);
});
