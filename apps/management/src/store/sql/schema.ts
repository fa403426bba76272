// The tables both backends hold, as kysely sees them (store/README.md has the
// schema's history). Values are typed as written: times are epoch
// milliseconds, flags are whatever the dialect stores booleans as (0/1 in
// SQLite, BOOLEAN in PostgreSQL), lists and settings are JSON text, a peer's
// address is its IPv4 address as an unsigned 32-bit integer, keys are bytes.
// Rows read back are mapped by rows.ts, which also accepts PostgreSQL's
// BIGINTs as strings.

import type { Generated } from "kysely";

/** A boolean as the dialect stores it (sql/dialect.ts). */
export type Flag = number | boolean;

export interface ServerKeysTable {
	id: number;
	private_key: Uint8Array;
	public_key: Uint8Array;
	created_at: number;
}

export interface AccountsTable {
	id: string;
	network: string;
	dns_domain: string;
	created_at: number;
	settings: string;
	revision: Generated<number>;
}

export interface UsersTable {
	id: string;
	account_id: string;
	name: string;
	email: string;
	role: string;
	is_service_user: Flag;
	blocked: Flag;
	auto_groups: string;
	created_at: number;
}

export interface TokensTable {
	id: string;
	user_id: string;
	name: string;
	hashed_token: string;
	expires_at: number;
	created_by: string;
	created_at: number;
	last_used: number | null;
}

export interface SetupKeysTable {
	id: string;
	account_id: string;
	name: string;
	hashed_key: string;
	key_prefix: string;
	type: string;
	created_at: number;
	updated_at: number;
	expires_at: number | null;
	revoked: Flag;
	used_times: number;
	last_used: number | null;
	usage_limit: number;
	auto_groups: string;
	ephemeral: Flag;
}

export interface GroupsTable {
	id: string;
	account_id: string;
	name: string;
	issued: string;
}

export interface GroupPeersTable {
	group_id: string;
	peer_id: string;
}

export interface PoliciesTable {
	id: string;
	account_id: string;
	name: string;
	description: string;
	enabled: Flag;
	rules: string;
	created_at: number;
}

export interface AuditEventsTable {
	id: Generated<number>;
	account_id: string;
	timestamp: number;
	activity_code: string;
	initiator_id: string;
	initiator_name: string;
	initiator_email: string;
	target_id: string;
	meta: string;
}

export interface PeersTable {
	id: string;
	account_id: string;
	wg_public_key: string;
	name: string;
	dns_label: string;
	ip: number;
	hostname: string;
	os: string;
	os_version: string;
	kernel_version: string;
	agent_version: string;
	setup_key_id: string | null;
	user_id: string | null;
	ephemeral: Flag;
	ssh_enabled: Flag;
	login_expiration_enabled: Flag;
	connected: Flag;
	created_at: number;
	last_login: number;
	last_seen: number;
	connection_ip: string;
}

export interface ManagementInstancesTable {
	id: string;
	started_at: number;
	heartbeat_at: number;
}

export interface SyncSessionsTable {
	stream_id: string;
	account_id: string;
	peer_id: string;
	instance_id: string;
	since: number;
}

/** Group lists are JSON text (store/README.md says why). */
export interface RoutesTable {
	id: string;
	account_id: string;
	network_id: string;
	description: string;
	enabled: Flag;
	peer_id: string | null;
	peer_groups: string;
	network: string;
	metric: number;
	masquerade: Flag;
	groups: string;
	keep_route: Flag;
	access_control_groups: string;
	skip_auto_apply: Flag;
}

export interface NetworksTable {
	id: string;
	account_id: string;
	name: string;
	description: string;
}

export interface NetworkResourcesTable {
	id: string;
	account_id: string;
	network_id: string;
	name: string;
	description: string;
	address: string;
	type: string;
	prefix: string;
	enabled: Flag;
	groups: string;
}

export interface NetworkRoutersTable {
	id: string;
	account_id: string;
	network_id: string;
	peer_id: string | null;
	peer_groups: string;
	metric: number;
	masquerade: Flag;
	enabled: Flag;
}

export interface SchemaMigrationsTable {
	version: number;
	name: string;
	applied_at: number;
}

export interface StoreSchema {
	server_keys: ServerKeysTable;
	accounts: AccountsTable;
	users: UsersTable;
	personal_access_tokens: TokensTable;
	setup_keys: SetupKeysTable;
	groups: GroupsTable;
	group_peers: GroupPeersTable;
	policies: PoliciesTable;
	audit_events: AuditEventsTable;
	peers: PeersTable;
	management_instances: ManagementInstancesTable;
	sync_sessions: SyncSessionsTable;
	routes: RoutesTable;
	networks: NetworksTable;
	network_resources: NetworkResourcesTable;
	network_routers: NetworkRoutersTable;
	schema_migrations: SchemaMigrationsTable;
}

/**
 * Every data table, parents before children (copying and dumping go in this
 * order). Not `management_instances` and `sync_sessions`: they describe the
 * running processes, not the installation, and are rebuilt as instances start
 * and agents reconnect.
 */
export const DATA_TABLES = [
	"server_keys",
	"accounts",
	"users",
	"personal_access_tokens",
	"setup_keys",
	"groups",
	"peers",
	"group_peers",
	"policies",
	"audit_events",
	"routes",
	"networks",
	"network_resources",
	"network_routers",
] as const satisfies readonly (keyof StoreSchema)[];

/** The tables of running instances' state, rebuilt as instances start and agents reconnect (migration 5). */
export const RUNNING_STATE_TABLES = [
	"management_instances",
	"sync_sessions",
] as const satisfies readonly (keyof StoreSchema)[];
