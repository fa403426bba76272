import type { ServerResponse } from "node:http";

/**
 * Answers a plain node:http request: the body with its length, never cached,
 * and no body for HEAD. For the small HTTP surfaces of the services
 * (health, metrics), not for the REST API.
 */
export function respond(
	res: ServerResponse,
	status: number,
	type: string,
	body: string,
	headers: Record<string, string> = {},
): void {
	res.writeHead(status, {
		"Content-Type": type,
		"Content-Length": Buffer.byteLength(body),
		"Cache-Control": "no-store",
		...headers,
	});
	res.end(res.req.method === "HEAD" ? undefined : body);
}

/** Every Starling error body: `{"message": ..., "code": <HTTP status>}` and a newline. */
export function errorJson(code: number, message: string): string {
	return `${JSON.stringify({ message, code })}\n`;
}
