// The benchmark's side of the load generator (lib-sync-agents.ts): forks it
// as its own process and turns its IPC messages into awaitable calls.
import { type ChildProcess, fork } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { log } from "./lib-control-plane.js";
import type { AgentSpec, FromGenerator, ToGenerator, Watch } from "./lib-sync-agents-protocol.js";

type Reply<T extends FromGenerator["type"]> = Extract<FromGenerator, { type: T }>;

export class AgentGenerator {
	private readonly waiters = new Map<string, (m: FromGenerator) => void>();
	private failure: Error | undefined;

	private constructor(private readonly child: ChildProcess) {
		child.on("message", (m: FromGenerator) => {
			if (m.type === "progress") return log(`generator: ${m.message}`);
			if (m.type === "error") {
				this.failure = new Error(`load generator failed: ${m.message}`);
				for (const w of this.waiters.values()) w(m);
				return;
			}
			const waiter = this.waiters.get(m.type);
			this.waiters.delete(m.type);
			waiter?.(m);
		});
		child.on("exit", (code) => {
			this.failure ??= new Error(`load generator exited (${code})`);
			for (const w of this.waiters.values()) w({ type: "error", message: this.failure.message });
		});
	}

	static async fork(): Promise<AgentGenerator> {
		const here = dirname(fileURLToPath(import.meta.url));
		const child = fork(join(here, "lib-sync-agents.js"), [], {
			execArgv: ["--max-old-space-size=8192"],
			stdio: ["ignore", "inherit", "inherit", "ipc"],
		});
		const generator = new AgentGenerator(child);
		await generator.next("alive");
		return generator;
	}

	pid(): number {
		return this.child.pid ?? 0;
	}

	private next<T extends FromGenerator["type"]>(type: T): Promise<Reply<T>> {
		return new Promise((resolve, reject) => {
			if (this.failure) return reject(this.failure);
			this.waiters.set(type, (m) =>
				m.type === "error" ? reject(this.failure ?? new Error(m.message)) : resolve(m as Reply<T>),
			);
		});
	}

	private ask<T extends FromGenerator["type"]>(message: ToGenerator, reply: T): Promise<Reply<T>> {
		const answer = this.next(reply);
		this.child.send(message);
		return answer;
	}

	start(agents: AgentSpec[]) {
		return this.ask({ type: "start", agents }, "ready");
	}

	async settled(account: string, expectPeers: number): Promise<boolean> {
		return (await this.ask({ type: "settled", account, expectPeers }, "settled")).ok;
	}

	watch(watch: Watch, timeoutMs: number) {
		return this.ask({ type: "watch", watch, timeoutMs }, "arrivals");
	}

	resync(since: number, expectLost: number, timeoutMs: number) {
		return this.ask({ type: "resync", since, expectLost, timeoutMs }, "resynced");
	}

	async stop(): Promise<void> {
		if (this.child.exitCode !== null) return;
		const exited = new Promise((r) => this.child.once("exit", r));
		this.child.send({ type: "stop" } satisfies ToGenerator);
		const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
		await exited;
		clearTimeout(timer);
	}
}
