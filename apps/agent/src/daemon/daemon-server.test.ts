import * as grpc from "@grpc/grpc-js";
import { createLogger } from "@starling/log";
import { describe, expect, it } from "vitest";
import { AgentError, type AgentErrorKind } from "./agent-error.js";
import { grpcStatusOf, toStatus } from "./daemon-server.js";

const logger = createLogger("daemon-server-test", { level: "silent" });

describe("the daemon's gRPC edge", () => {
	it("maps every kind of agent error to its status code", () => {
		const expected: Record<AgentErrorKind, grpc.status> = {
			"invalid-argument": grpc.status.INVALID_ARGUMENT,
			"already-up": grpc.status.ALREADY_EXISTS,
			"not-up": grpc.status.FAILED_PRECONDITION,
			"host-not-ready": grpc.status.FAILED_PRECONDITION,
			"management-unreachable": grpc.status.UNAVAILABLE,
			"login-refused": grpc.status.PERMISSION_DENIED,
			"login-failed": grpc.status.FAILED_PRECONDITION,
			"server-not-trusted": grpc.status.FAILED_PRECONDITION,
			"permission-denied": grpc.status.PERMISSION_DENIED,
			internal: grpc.status.INTERNAL,
		};
		for (const [kind, code] of Object.entries(expected)) {
			expect(grpcStatusOf(kind as AgentErrorKind), kind).toBe(code);
			expect(toStatus(new AgentError(kind as AgentErrorKind, `why ${kind}`), logger)).toEqual({
				code,
				details: `why ${kind}`,
			});
		}
	});

	it("answers anything else as INTERNAL with its first line", () => {
		expect(toStatus(new Error("nft failed\nline 2"), logger)).toEqual({
			code: grpc.status.INTERNAL,
			details: "nft failed",
		});
	});
});
