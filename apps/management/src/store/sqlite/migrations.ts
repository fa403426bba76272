// Versioned schema migrations of the SQLite store. Append only: never edit
// a migration that has shipped; add a new one.

export interface Migration {
	version: number;
	name: string;
	sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
	{
		version: 1,
		name: "initial schema",
		sql: `
CREATE TABLE server_keys (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	private_key BLOB NOT NULL,
	public_key BLOB NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE TABLE accounts (
	id TEXT PRIMARY KEY,
	network TEXT NOT NULL UNIQUE,
	dns_domain TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	settings TEXT NOT NULL
);
CREATE TABLE users (
	id TEXT PRIMARY KEY,
	account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	email TEXT NOT NULL,
	role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'user')),
	is_service_user INTEGER NOT NULL,
	blocked INTEGER NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX users_account ON users(account_id);
CREATE TABLE personal_access_tokens (
	id TEXT PRIMARY KEY,
	user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	hashed_token TEXT NOT NULL UNIQUE,
	expires_at INTEGER NOT NULL,
	created_by TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	last_used INTEGER
);
CREATE INDEX tokens_user ON personal_access_tokens(user_id);
CREATE TABLE setup_keys (
	id TEXT PRIMARY KEY,
	account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	hashed_key TEXT NOT NULL UNIQUE,
	key_prefix TEXT NOT NULL,
	type TEXT NOT NULL CHECK (type IN ('reusable', 'one-off')),
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	expires_at INTEGER,
	revoked INTEGER NOT NULL,
	used_times INTEGER NOT NULL,
	last_used INTEGER,
	usage_limit INTEGER NOT NULL,
	auto_groups TEXT NOT NULL,
	ephemeral INTEGER NOT NULL
);
CREATE INDEX setup_keys_account ON setup_keys(account_id);
CREATE TABLE groups (
	id TEXT PRIMARY KEY,
	account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	issued TEXT NOT NULL,
	UNIQUE (account_id, name)
);
CREATE TABLE peers (
	id TEXT PRIMARY KEY,
	account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	wg_public_key TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL,
	dns_label TEXT NOT NULL,
	ip INTEGER NOT NULL,
	hostname TEXT NOT NULL,
	os TEXT NOT NULL,
	os_version TEXT NOT NULL,
	kernel_version TEXT NOT NULL,
	agent_version TEXT NOT NULL,
	setup_key_id TEXT,
	user_id TEXT,
	ephemeral INTEGER NOT NULL,
	ssh_enabled INTEGER NOT NULL,
	login_expiration_enabled INTEGER NOT NULL,
	connected INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	last_login INTEGER NOT NULL,
	last_seen INTEGER NOT NULL,
	UNIQUE (account_id, ip),
	UNIQUE (account_id, dns_label)
);
CREATE INDEX peers_account ON peers(account_id);
CREATE TABLE group_peers (
	group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
	peer_id TEXT NOT NULL REFERENCES peers(id) ON DELETE CASCADE,
	PRIMARY KEY (group_id, peer_id)
);
CREATE INDEX group_peers_peer ON group_peers(peer_id);
`,
	},
	{
		version: 2,
		name: "access control: policies, user auto-groups, audit events",
		// Accounts made before policies existed let every peer reach every
		// other; each gets the Default policy (All to All, both ways, every
		// protocol) so that nothing changes for them.
		sql: `
ALTER TABLE users ADD COLUMN auto_groups TEXT NOT NULL DEFAULT '[]';
CREATE TABLE policies (
	id TEXT PRIMARY KEY,
	account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	description TEXT NOT NULL,
	enabled INTEGER NOT NULL,
	rules TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX policies_account ON policies(account_id, created_at);
CREATE TABLE audit_events (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	timestamp INTEGER NOT NULL,
	activity_code TEXT NOT NULL,
	initiator_id TEXT NOT NULL,
	initiator_name TEXT NOT NULL,
	initiator_email TEXT NOT NULL,
	target_id TEXT NOT NULL,
	meta TEXT NOT NULL
);
CREATE INDEX audit_events_account ON audit_events(account_id, id);
CREATE INDEX groups_account ON groups(account_id);
INSERT INTO policies (id, account_id, name, description, enabled, rules, created_at)
SELECT lower(hex(randomblob(10))), a.id, 'Default',
	'This is a default policy that allows connections between all the resources', 1,
	json_array(json_object(
		'id', lower(hex(randomblob(10))),
		'name', 'Default',
		'description', 'This is a default rule that allows connections between all the resources',
		'enabled', json('true'),
		'action', 'accept',
		'bidirectional', json('true'),
		'protocol', 'all',
		'ports', json('[]'),
		'portRanges', json('[]'),
		'sources', json_array(g.id),
		'destinations', json_array(g.id)
	)),
	a.created_at
FROM accounts a JOIN groups g ON g.account_id = a.id AND g.issued = 'all';
`,
	},
	{
		version: 3,
		name: "peers: the public address of the last login (NetBird's connection_ip)",
		sql: `
ALTER TABLE peers ADD COLUMN connection_ip TEXT NOT NULL DEFAULT '';
`,
	},
	{
		version: 4,
		name: "accounts: a revision that every change to the account's network data moves",
		// Triggers, so that every writer moves it: this instance, another
		// management instance on the same file, the CLI. Readers compare it to
		// the revision a cached listing was built at (rest/listings.ts).
		// Tokens, users, setup keys and events do not move it: the token
		// touched on every request would otherwise invalidate every cache.
		sql: `
ALTER TABLE accounts ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER peers_insert_revision AFTER INSERT ON peers BEGIN
	UPDATE accounts SET revision = revision + 1 WHERE id = NEW.account_id;
END;
CREATE TRIGGER peers_update_revision AFTER UPDATE ON peers BEGIN
	UPDATE accounts SET revision = revision + 1 WHERE id = NEW.account_id;
END;
CREATE TRIGGER peers_delete_revision AFTER DELETE ON peers BEGIN
	UPDATE accounts SET revision = revision + 1 WHERE id = OLD.account_id;
END;
CREATE TRIGGER groups_insert_revision AFTER INSERT ON groups BEGIN
	UPDATE accounts SET revision = revision + 1 WHERE id = NEW.account_id;
END;
CREATE TRIGGER groups_update_revision AFTER UPDATE ON groups BEGIN
	UPDATE accounts SET revision = revision + 1 WHERE id = NEW.account_id;
END;
CREATE TRIGGER groups_delete_revision AFTER DELETE ON groups BEGIN
	UPDATE accounts SET revision = revision + 1 WHERE id = OLD.account_id;
END;
CREATE TRIGGER policies_insert_revision AFTER INSERT ON policies BEGIN
	UPDATE accounts SET revision = revision + 1 WHERE id = NEW.account_id;
END;
CREATE TRIGGER policies_update_revision AFTER UPDATE ON policies BEGIN
	UPDATE accounts SET revision = revision + 1 WHERE id = NEW.account_id;
END;
CREATE TRIGGER policies_delete_revision AFTER DELETE ON policies BEGIN
	UPDATE accounts SET revision = revision + 1 WHERE id = OLD.account_id;
END;
CREATE TRIGGER group_peers_insert_revision AFTER INSERT ON group_peers BEGIN
	UPDATE accounts SET revision = revision + 1
	WHERE id = (SELECT account_id FROM groups WHERE id = NEW.group_id);
END;
CREATE TRIGGER group_peers_delete_revision AFTER DELETE ON group_peers BEGIN
	UPDATE accounts SET revision = revision + 1
	WHERE id = (SELECT account_id FROM groups WHERE id = OLD.group_id);
END;
CREATE TRIGGER accounts_update_revision AFTER UPDATE OF network, dns_domain, settings ON accounts BEGIN
	UPDATE accounts SET revision = revision + 1 WHERE id = NEW.id;
END;
`,
	},
	{
		version: 5,
		name: "Sync sessions per management instance, with instance heartbeats",
		// A peer is connected while it holds a session; peers.connected is
		// kept equal to that by the writes that add and remove sessions (in
		// the same transaction), so listings and the revision triggers work
		// as before. No session survives the upgrade: every instance restarts.
		sql: `
CREATE TABLE management_instances (
	id TEXT PRIMARY KEY,
	started_at INTEGER NOT NULL,
	heartbeat_at INTEGER NOT NULL
);
CREATE TABLE sync_sessions (
	stream_id TEXT PRIMARY KEY,
	account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	peer_id TEXT NOT NULL REFERENCES peers(id) ON DELETE CASCADE,
	instance_id TEXT NOT NULL REFERENCES management_instances(id) ON DELETE CASCADE,
	since INTEGER NOT NULL
);
CREATE INDEX sync_sessions_peer ON sync_sessions(peer_id);
CREATE INDEX sync_sessions_instance ON sync_sessions(instance_id);
UPDATE peers SET connected = 0 WHERE connected = 1;
`,
	},
];
