// DNS labels for peers: RFC 1123 labels derived from host names, unique
// within an account.

const MAX_LABEL = 63;

/** "Web Server_01.local" -> "web-server-01". Never empty. */
export function toDnsLabel(name: string): string {
	const label = name
		.toLowerCase()
		.split(".")[0]!
		.replace(/[^a-z0-9-]+/g, "-")
		.replace(/-+/g, "-")
		.replace(/^-|-$/g, "")
		.slice(0, MAX_LABEL)
		.replace(/-$/, "");
	return label || "peer";
}

/** `base`, or `base-1`, `base-2`, ... whichever is not taken. */
export function uniqueDnsLabel(base: string, taken: ReadonlySet<string>): string {
	if (!taken.has(base)) return base;
	for (let i = 1; ; i++) {
		const suffix = `-${i}`;
		const candidate = base.slice(0, MAX_LABEL - suffix.length).replace(/-$/, "") + suffix;
		if (!taken.has(candidate)) return candidate;
	}
}
