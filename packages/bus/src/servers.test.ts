import { describe, expect, it } from "vitest";
import { redactServerUrl } from "./servers.js";

describe("redactServerUrl", () => {
	it("hides user names, passwords and tokens and keeps the server", () => {
		expect(redactServerUrl("nats://alice:s3cret@nats.example:4222")).toBe(
			"nats://***@nats.example:4222",
		);
		expect(redactServerUrl("tls://tok3n@10.0.0.1:4222")).toBe("tls://***@10.0.0.1:4222");
	});

	it("leaves URLs without credentials alone", () => {
		expect(redactServerUrl("nats://127.0.0.1:4222")).toBe("nats://127.0.0.1:4222");
		expect(redactServerUrl("127.0.0.1:4222")).toBe("127.0.0.1:4222");
	});
});
