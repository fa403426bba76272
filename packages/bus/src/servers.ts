/**
 * A NATS server URL fit for a log line or an error message: the user name
 * and password (or token) a URL may carry (`nats://user:secret@host:4222`)
 * are replaced by `***`, so configuration errors never print a secret.
 */
export function redactServerUrl(url: string): string {
	return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, "$1***@");
}
