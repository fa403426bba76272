import type { Logger } from "@starling/log";
import type { NetworkMap } from "@starling/proto";
import type { MapConsumer } from "../engine/map-consumer.js";
import { firewallStatusOf } from "../engine/status.js";
import { type Firewall, inboundRulesFor } from "./firewall.js";

/**
 * The inbound firewall as a map consumer: installs each map's rules (allow
 * all while management does not enforce them) and keeps the status line.
 */
export class FirewallConsumer implements MapConsumer {
	readonly name = "firewall";
	/** Whether the last map's rules are authoritative; undefined before the first map. */
	private enforced: boolean | undefined;
	private error = "";
	private applying: Promise<void> = Promise.resolve();

	constructor(
		private readonly firewall: Pick<Firewall, "apply" | "ruleCount">,
		private readonly logger: Logger,
	) {}

	applyMap(map: NetworkMap): void {
		const { enforced, rules } = inboundRulesFor(map);
		if (enforced !== this.enforced) {
			this.logger.info(
				{ enforced },
				enforced
					? "management enforces access policies: inbound overlay traffic follows its rules"
					: "management sends no access policies: inbound overlay traffic is allowed",
			);
		}
		this.enforced = enforced;
		this.applying = this.firewall.apply(rules).then(
			() => {
				this.error = "";
			},
			(err: unknown) => {
				this.error = err instanceof Error ? err.message.split("\n")[0]! : String(err);
				this.logger.error(
					{ error: err instanceof Error ? err.message : String(err) },
					"firewall update failed",
				);
			},
		);
	}

	settled(): Promise<void> {
		return this.applying;
	}

	async stop(): Promise<void> {
		await this.applying;
	}

	/** The firewall line of `starling status`. */
	status(): string {
		return firewallStatusOf(this.firewall, this.enforced, this.error);
	}
}
