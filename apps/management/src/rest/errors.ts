import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
	hasZodFastifySchemaValidationErrors,
	isResponseSerializationError,
} from "fastify-type-provider-zod";
import { AppError } from "../app/errors.js";
import { StoreUnavailableError } from "../store/store.js";

// Every answer that is not a success is {"message": "...", "code": <status>}:
// validation failures, malformed or oversized bodies, wrong content types,
// unknown routes, refusals of the app layer and bugs alike. Bugs answer a
// bare "internal error" and are logged (error name, message and stack only:
// never a request or response body, never a header).

export interface ErrorBodyJson {
	message: string;
	code: number;
}

export function errorBody(status: number, message: string): ErrorBodyJson {
	return { message, code: status };
}

interface Classified {
	status: number;
	message: string;
	/** A bug (or an outage): logged at error level, details withheld from the client. */
	internal: boolean;
}

const INTERNAL: Classified = { status: 500, message: "internal error", internal: true };

/** Fastify's own request errors, reworded for API clients. */
const FRAMEWORK_MESSAGES: Record<string, string> = {
	FST_ERR_CTP_INVALID_JSON_BODY: "malformed JSON body",
	FST_ERR_CTP_EMPTY_JSON_BODY: "empty JSON body",
	FST_ERR_CTP_INVALID_MEDIA_TYPE: "unsupported content type: send application/json",
	FST_ERR_CTP_BODY_TOO_LARGE: "request body is too large",
	FST_ERR_CTP_INVALID_CONTENT_LENGTH: "request body size does not match Content-Length",
	FST_ERR_CTP_INVALID_TYPE: "malformed Content-Type header",
	FST_ERR_CTP_EMPTY_TYPE: "empty Content-Type header",
	FST_ERR_BAD_URL: "malformed URL",
	FST_ERR_MAX_PARAM_LENGTH: "a path parameter is too long",
};

function isObject(v: unknown): v is Record<string, unknown> {
	return typeof v === "object" && v !== null;
}

/** "Invalid input: expected number, received string" -> "expected number, received string". */
function tidy(message: string): string {
	const m = /^Invalid input: expected (.+), received undefined$/.exec(message);
	if (m) return `is required (expected ${m[1]})`;
	return message.replace(/^Invalid input: /, "");
}

/** One line naming each offending field, e.g. "body/usage_limit: expected number, received string". */
export function validationMessage(
	error: Pick<FastifyError, "validation" | "validationContext">,
): string {
	const where = error.validationContext ?? "request";
	const issues = error.validation ?? [];
	if (issues.length === 0) return `${where}: invalid`;
	const lines = issues.slice(0, 5).map((issue) => {
		const path = issue.instancePath && issue.instancePath !== "/" ? issue.instancePath : "";
		return `${where}${path}: ${tidy(issue.message ?? "invalid")}`;
	});
	if (issues.length > 5) lines.push(`(${issues.length - 5} more)`);
	return lines.join("; ");
}

export function classifyError(error: unknown): Classified {
	if (error instanceof AppError)
		return { status: error.status, message: error.message, internal: false };
	// The database is out of reach (or too busy): nothing changed, try again later.
	// Logged once per outage by the store, not per request.
	if (error instanceof StoreUnavailableError)
		return {
			status: 503,
			message: "the database is unavailable; try again later",
			internal: false,
		};
	if (!isObject(error)) return INTERNAL;
	if (hasZodFastifySchemaValidationErrors(error)) {
		return { status: 400, message: validationMessage(error), internal: false };
	}
	if ("method" in error && isResponseSerializationError(error)) return INTERNAL;
	const fe = error as Partial<FastifyError>;
	const status = typeof fe.statusCode === "number" ? fe.statusCode : 500;
	if (status < 400 || status > 499) return INTERNAL;
	if (Array.isArray(fe.validation)) {
		return { status: 400, message: validationMessage(fe), internal: false };
	}
	const reword = typeof fe.code === "string" ? FRAMEWORK_MESSAGES[fe.code] : undefined;
	const message = reword ?? (typeof fe.message === "string" ? fe.message : "bad request");
	return { status, message, internal: false };
}

/** What is safe to log about an unexpected error: no bodies, no headers, no inputs. */
export function loggableError(error: unknown): Record<string, unknown> {
	if (!isObject(error)) return { type: typeof error };
	const out: Record<string, unknown> = {
		name: typeof error.name === "string" ? error.name : undefined,
		message: typeof error.message === "string" ? error.message : undefined,
		code: error.code,
		stack: typeof error.stack === "string" ? error.stack : undefined,
	};
	// A response that does not match its schema: name the fields, not their values.
	const cause = error.cause;
	if (isObject(cause) && Array.isArray(cause.issues)) {
		out.issues = cause.issues.map((i: unknown) =>
			isObject(i) ? `${Array.isArray(i.path) ? i.path.join(".") : ""}: ${String(i.message)}` : "?",
		);
	}
	return out;
}

function pathOf(url: string): string {
	const path = url.split("?")[0] ?? "";
	return path.length > 200 ? `${path.slice(0, 200)}...` : path;
}

/**
 * Installs the error handler, the 404 handler and the JSON-only content-type
 * parsing on the root instance (children inherit them).
 */
export function installErrorHandling(app: FastifyInstance): void {
	app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
		const c = classifyError(error);
		if (c.internal) {
			request.log.error(
				{ err: loggableError(error) },
				"internal error while handling a REST request",
			);
		} else {
			request.log.debug({ status: c.status, reason: c.message }, "REST request refused");
		}
		return reply
			.code(c.status)
			.type("application/json; charset=utf-8")
			.send(errorBody(c.status, c.message));
	});

	app.setNotFoundHandler((request, reply) =>
		reply
			.code(404)
			.type("application/json; charset=utf-8")
			.send(errorBody(404, `no such route: ${request.method} ${pathOf(request.url)}`)),
	);

	// JSON only: text/plain (fastify's other default) and everything else is a 415.
	// An empty body reads as no body, so a DELETE that sends
	// "Content-Type: application/json" and nothing else is fine; a POST or
	// PUT without a body then fails validation with a 400.
	const parseJson = app.getDefaultJsonParser("error", "error");
	app.removeAllContentTypeParsers();
	app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
		const text = typeof body === "string" ? body : body.toString("utf8");
		if (text.trim() === "") {
			done(null, undefined);
			return;
		}
		parseJson(request, text, done);
	});
}

/** For Fastify's `frameworkErrors` option: bad URLs and the like, in the same shape. */
export function frameworkErrorHandler(
	error: FastifyError,
	_request: FastifyRequest,
	reply: FastifyReply,
): void {
	const c = classifyError(error);
	void reply
		.code(c.status)
		.type("application/json; charset=utf-8")
		.send(errorBody(c.status, c.message));
}

/** For Fastify's `clientErrorHandler` option: unparseable HTTP, answered in the same shape. */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
	if (error.code === "ECONNRESET" || socket.destroyed) return;
	const status =
		error.code === "ERR_HTTP_REQUEST_TIMEOUT"
			? 408
			: error.code === "HPE_HEADER_OVERFLOW"
				? 431
				: 400;
	const message =
		status === 408
			? "request timeout"
			: status === 431
				? "request headers too large"
				: "malformed HTTP request";
	const body = JSON.stringify(errorBody(status, message));
	if (!socket.writable) {
		socket.destroy();
		return;
	}
	socket.end(
		`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
	);
}
