/** NATS subject rules, shared by the in-process bus so both behave alike. */

const TOKEN = /^[^\s.*>]+$/;

/** A subject to publish on: non-empty tokens, no wildcards, no whitespace. */
export function isPublishSubject(subject: string): boolean {
	return subject.length > 0 && subject.split(".").every((t) => TOKEN.test(t));
}

/** A subject to subscribe to: tokens, `*` for one token, `>` only as the last token. */
export function isSubscribeSubject(subject: string): boolean {
	if (subject.length === 0) return false;
	const tokens = subject.split(".");
	return tokens.every(
		(t, i) => t === "*" || (t === ">" && i === tokens.length - 1) || TOKEN.test(t),
	);
}

/** Whether `subject` (concrete) matches `pattern` (which may hold wildcards). */
export function subjectMatches(pattern: string, subject: string): boolean {
	const p = pattern.split(".");
	const s = subject.split(".");
	for (let i = 0; i < p.length; i++) {
		if (p[i] === ">") return s.length > i;
		if (i >= s.length) return false;
		if (p[i] !== "*" && p[i] !== s[i]) return false;
	}
	return p.length === s.length;
}
