import { auditEvent, type Initiator } from "../core/audit.js";
import { newId } from "../core/random.js";
import { hashSecret, isWellFormedToken, newPersonalAccessToken } from "../core/secrets.js";
import type { Account, PersonalAccessToken, User } from "../domain/types.js";
import type { Store } from "../store/store.js";
import { deleteAudited } from "./audit.js";
import { AppError, stored } from "./errors.js";

export const MAX_TOKEN_DAYS = 365;

/** A new token for `user`: the plain text (shown once) and what is stored (its hash). */
export function newToken(
	user: User,
	createdBy: string,
	name: string,
	expiresInDays: number,
	now: Date,
): { plainToken: string; token: PersonalAccessToken } {
	const plainToken = newPersonalAccessToken();
	const token: PersonalAccessToken = {
		id: newId(),
		userId: user.id,
		name,
		hashedToken: hashSecret(plainToken),
		expiresAt: new Date(now.getTime() + expiresInDays * 86_400_000),
		createdBy,
		createdAt: now,
		lastUsed: null,
	};
	return { plainToken, token };
}

export async function createPersonalAccessToken(
	store: Store,
	user: User,
	createdBy: string,
	name: string,
	expiresInDays: number,
	now: Date,
	initiator?: Initiator,
): Promise<{ plainToken: string; token: PersonalAccessToken }> {
	const { plainToken, token } = newToken(user, createdBy, name, expiresInDays, now);
	await stored(
		store.write(async (tx) => {
			await tx.insertToken(token);
			if (initiator) {
				await tx.appendEvents([
					auditEvent(user.accountId, initiator, "personal.access.token.create", token.id, now, {
						name,
						user_id: user.id,
						user_name: user.name,
					}),
				]);
			}
		}),
	);
	return { plainToken, token };
}

export async function deletePersonalAccessToken(
	store: Store,
	user: User,
	tokenId: string,
	now: Date,
	initiator: Initiator,
): Promise<void> {
	const deleted = await deleteAudited(
		store,
		(tx) => tx.getToken(user.id, tokenId),
		(tx) => tx.deleteToken(user.id, tokenId),
		(token) =>
			auditEvent(user.accountId, initiator, "personal.access.token.delete", tokenId, now, {
				name: token.name,
				user_id: user.id,
				user_name: user.name,
			}),
	);
	if (!deleted) throw new AppError(404, "token not found");
}

export interface AuthContext {
	user: User;
	account: Account;
	token: PersonalAccessToken;
}

/**
 * Resolves an `Authorization: Token <pat>` header to its user and account.
 * The lookup is by SHA-256 of the presented token, so nothing about the
 * stored secret leaks through timing; all failures read the same.
 */
export async function authenticateToken(
	store: Store,
	header: string | undefined,
	now: Date,
): Promise<AuthContext> {
	if (!header)
		throw new AppError(
			401,
			"missing Authorization header (expected 'Token <personal access token>')",
		);
	const match = /^Token\s+(\S+)$/i.exec(header.trim()) ?? /^Bearer\s+(\S+)$/i.exec(header.trim());
	if (!match?.[1])
		throw new AppError(
			401,
			"malformed Authorization header (expected 'Token <personal access token>')",
		);
	const plain = match[1];
	if (!isWellFormedToken(plain)) throw new AppError(401, "invalid token");
	const token = await store.getTokenByHash(hashSecret(plain));
	if (!token) throw new AppError(401, "invalid token");
	if (token.expiresAt.getTime() <= now.getTime()) throw new AppError(401, "token has expired");
	const user = await store.getUser(token.userId);
	if (!user || user.blocked) throw new AppError(401, "invalid token");
	const account = await store.getAccount(user.accountId);
	if (!account) throw new AppError(401, "invalid token");
	await store.write((tx) => tx.touchToken(token.id, now));
	return { user, account, token };
}
