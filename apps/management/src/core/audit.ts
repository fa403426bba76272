import type { ActivityCode, NewAuditEvent } from "../domain/types.js";

// Audit log vocabulary: NetBird's activity codes and the sentence each one
// reads as in listings (`activity`). NetBird records every removal of a peer
// as "user.peer.delete", whoever did it (a user, or the system); Starling
// does the same for a peer that logs out (the initiator tells them apart).

export const ACTIVITY_TEXT: Record<ActivityCode, string> = {
	"account.create": "Account created",
	"account.setting.peer.login.expiration.enable": "Account peer login expiration enabled",
	"account.setting.peer.login.expiration.disable": "Account peer login expiration disabled",
	"account.setting.peer.login.expiration.update": "Account peer login expiration duration updated",
	"account.network.range.update": "Account network range updated",
	"peer.setupkey.add": "Peer added with setup key",
	"peer.rename": "Peer renamed",
	"peer.ssh.enable": "Peer SSH server enabled",
	"peer.ssh.disable": "Peer SSH server disabled",
	"peer.login.expiration.enable": "Peer login expiration enabled",
	"peer.login.expiration.disable": "Peer login expiration disabled",
	"user.peer.delete": "Peer deleted",
	"setupkey.add": "Setup key created",
	"setupkey.update": "Setup key updated",
	"setupkey.revoke": "Setup key revoked",
	"setupkey.delete": "Setup key deleted",
	"group.add": "Group created",
	"group.update": "Group updated",
	"group.delete": "Group deleted",
	"policy.add": "Policy added",
	"policy.update": "Policy updated",
	"policy.delete": "Policy deleted",
	"user.create": "User created",
	"service.user.create": "Service user created",
	"user.role.update": "User role updated",
	"user.group.add": "Group added to user",
	"user.group.delete": "Group removed from user",
	"user.block": "User blocked",
	"user.unblock": "User unblocked",
	"user.delete": "User deleted",
	"service.user.delete": "Service user deleted",
	"personal.access.token.create": "Personal access token created",
	"personal.access.token.delete": "Personal access token deleted",
	"route.add": "Route created",
	"route.update": "Route updated",
	"route.delete": "Route deleted",
	"network.create": "Network created",
	"network.update": "Network updated",
	"network.delete": "Network deleted",
	"network.resource.create": "Network resource created",
	"network.resource.update": "Network resource updated",
	"network.resource.delete": "Network resource deleted",
	"network.router.create": "Network router created",
	"network.router.update": "Network router updated",
	"network.router.delete": "Network router deleted",
};

/** Who made a change: a user (REST), a setup key (registration) or a peer (logout). */
export interface Initiator {
	id: string;
	name: string;
	email: string;
}

export function auditEvent(
	accountId: string,
	initiator: Initiator,
	activityCode: ActivityCode,
	targetId: string,
	at: Date,
	meta: Record<string, string> = {},
): NewAuditEvent {
	return {
		accountId,
		timestamp: at,
		activityCode,
		initiatorId: initiator.id,
		initiatorName: initiator.name,
		initiatorEmail: initiator.email,
		targetId,
		meta,
	};
}
