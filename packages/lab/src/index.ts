export {
	AddressError,
	AddressPool,
	formatIPv4,
	isLabAddress,
	LAB_RANGE,
	parseIPv4,
	parseLabSubnet,
	type Subnet,
} from "./address.js";
export {
	HOST_STATE_MOUNT,
	type Host,
	type HostOptions,
	Lab,
	type LabNode,
	type LabOptions,
	type Lan,
	type PingOptions,
	type Router,
	type RouterOptions,
	type SpawnOptions,
} from "./lab.js";
export { isAlive, killOrphans } from "./leftovers.js";
export {
	isNatKind,
	NAT_KINDS,
	NAT_TABLE,
	type NatKind,
	natRuleset,
	type PortForward,
} from "./nat.js";
export { type ExpectedPath, expectedPath, NETWORK_KINDS, type NetworkKind } from "./nat-grid.js";
export { type NatsServer, startNatsServer } from "./nats-server.js";
export { freeLoopbackPort } from "./ports.js";
export {
	clearPostgresLeftovers,
	POSTGRES_BIN,
	POSTGRES_TEST_MARKER,
	type PostgresCluster,
	type StartPostgresOptions,
	startPostgres,
} from "./postgres.js";
export type { LabProcess } from "./process.js";
export { NS_PREFIX, STATE_DIR } from "./registry.js";
export { addRootUplink, type RootUplink, type RootUplinkOptions } from "./root-uplink.js";
export { type ExecOptions, type ExecResult, LabCommandError } from "./run.js";
export {
	decideLabGate,
	type LabGate,
	type LabHostFacts,
	labSkipReason,
	labUnavailable,
	labUnavailableReason,
	REQUIRED_TOOLS,
	readLabHostFacts,
	SKIP_LAB_VARIABLE,
	skipLabRequested,
} from "./skip.js";
export { STUN_PORT, type StunServerOptions, startStunServer } from "./stun.js";
export { createTestPki, type TestPki, type TestPkiOptions } from "./test-pki.js";
export { waitFor } from "./wait.js";
export { startWireguardGo, type WireguardGoOptions } from "./wireguard-go.js";
