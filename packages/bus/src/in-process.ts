import {
	type Bus,
	BusClosedError,
	type BusHandler,
	BusNoResponderError,
	type BusResponder,
	type BusState,
	type BusSubscription,
	BusTimeoutError,
	type SubscribeOptions,
} from "./bus.js";
import { isPublishSubject, isSubscribeSubject, subjectMatches } from "./subject.js";

export interface InProcessBusOptions {
	/** Where a throwing handler's error goes (a handler must not throw; this keeps it visible). */
	onHandlerError?: (err: unknown, subject: string) => void;
}

interface Entry {
	pattern: string;
	queue: string | undefined;
	deliver: (payload: Uint8Array, subject: string, reply?: (answer: Uint8Array) => void) => void;
}

/**
 * The bus of a single instance: messages go to this process's own
 * subscribers, asynchronously (never inside `publish`), with NATS's subject
 * and queue-group rules, so code written against `Bus` behaves the same
 * with one instance and with several.
 */
export class InProcessBus implements Bus {
	readonly kind = "in-process" as const;
	/** Subscriptions to one concrete subject, by that subject: most are (e.g. one per peer key). */
	readonly #exact = new Map<string, Set<Entry>>();
	/** Subscriptions with `*` or `>`, matched one by one. */
	readonly #wildcards = new Set<Entry>();
	readonly #queueTurn = new Map<string, number>();
	readonly #closeListeners = new Set<() => void>();
	readonly #onHandlerError: (err: unknown, subject: string) => void;
	#closed = false;

	constructor(options: InProcessBusOptions = {}) {
		this.#onHandlerError =
			options.onHandlerError ??
			((err, subject) =>
				process.emitWarning(`bus handler for ${subject} threw: ${(err as Error)?.message ?? err}`));
	}

	publish(subject: string, payload: Uint8Array): void {
		this.#open();
		if (!isPublishSubject(subject)) throw new Error(`invalid subject to publish on: '${subject}'`);
		for (const entry of this.#pick(subject)) {
			setImmediate(() => entry.deliver(payload, subject));
		}
	}

	subscribe(subject: string, handler: BusHandler, options: SubscribeOptions = {}): BusSubscription {
		return this.#add(subject, options, (payload, s) => {
			try {
				handler(payload, s);
			} catch (err) {
				this.#onHandlerError(err, s);
			}
		});
	}

	respond(
		subject: string,
		responder: BusResponder,
		options: SubscribeOptions = {},
	): BusSubscription {
		return this.#add(subject, options, (payload, s, reply) => {
			Promise.resolve()
				.then(() => responder(payload, s))
				.then(
					(answer) => {
						if (answer !== undefined && reply) reply(answer);
					},
					(err: unknown) => this.#onHandlerError(err, s),
				);
		});
	}

	request(subject: string, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
		this.#open();
		if (!isPublishSubject(subject)) throw new Error(`invalid subject to request on: '${subject}'`);
		const targets = this.#pick(subject);
		if (targets.length === 0) return Promise.reject(new BusNoResponderError(subject));
		return new Promise((resolve, reject) => {
			let done = false;
			const timer = setTimeout(() => {
				done = true;
				reject(new BusTimeoutError(subject, timeoutMs));
			}, timeoutMs);
			const reply = (answer: Uint8Array) => {
				if (done) return;
				done = true;
				clearTimeout(timer);
				resolve(answer);
			};
			for (const entry of targets) setImmediate(() => entry.deliver(payload, subject, reply));
		});
	}

	async flush(): Promise<void> {
		this.#open();
		// Deliveries are scheduled with setImmediate: one turn lets them all run.
		await new Promise((resolve) => setImmediate(resolve));
	}

	state(): BusState {
		return this.#closed ? "closed" : "connected";
	}

	onStateChange(listener: (state: BusState, detail: string) => void): () => void {
		// Connected from birth to close; close is the only change.
		let active = true;
		this.#closeListeners.add(() => active && listener("closed", "closed by its owner"));
		return () => {
			active = false;
		};
	}

	async close(): Promise<void> {
		if (this.#closed) return;
		this.#closed = true;
		this.#exact.clear();
		this.#wildcards.clear();
		for (const listener of this.#closeListeners) listener();
		this.#closeListeners.clear();
	}

	#open(): void {
		if (this.#closed) throw new BusClosedError();
	}

	#add(subject: string, options: SubscribeOptions, deliver: Entry["deliver"]): BusSubscription {
		this.#open();
		if (!isSubscribeSubject(subject))
			throw new Error(`invalid subject to subscribe to: '${subject}'`);
		const entry: Entry = { pattern: subject, queue: options.queue, deliver };
		if (subject.includes("*") || subject.includes(">")) {
			this.#wildcards.add(entry);
			return { unsubscribe: () => this.#wildcards.delete(entry) };
		}
		let same = this.#exact.get(subject);
		if (!same) {
			same = new Set();
			this.#exact.set(subject, same);
		}
		same.add(entry);
		return {
			unsubscribe: () => {
				const current = this.#exact.get(subject);
				if (!current?.delete(entry)) return;
				if (current.size === 0) this.#exact.delete(subject);
			},
		};
	}

	/** Every plain subscriber that matches, and one member of each matching queue group (in turn). */
	#pick(subject: string): Entry[] {
		const picked: Entry[] = [];
		const groups = new Map<string, Entry[]>();
		const exact = this.#exact.get(subject) ?? [];
		for (const entry of [...exact, ...this.#wildcards]) {
			if (!subjectMatches(entry.pattern, subject)) continue;
			if (entry.queue === undefined) picked.push(entry);
			else {
				const members = groups.get(entry.queue) ?? [];
				members.push(entry);
				groups.set(entry.queue, members);
			}
		}
		for (const [queue, members] of groups) {
			const turn = this.#queueTurn.get(queue) ?? 0;
			this.#queueTurn.set(queue, turn + 1);
			picked.push(members[turn % members.length] as Entry);
		}
		return picked;
	}
}
