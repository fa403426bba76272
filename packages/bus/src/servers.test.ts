import { describe, expect, it } from "vitest";
import { redactServerUrl, splitCredentials } from "./servers.js";

describe("redactServerUrl", () => {
	it("hides user names, passwords and tokens and keeps the server", () => {
		expect(redactServerUrl("nats://alice:s3cret@nats.example:4222")).toBe(
			"nats://***@nats.example:4222",
		);
		expect(redactServerUrl("tls://tok3n@10.0.0.1:4222")).toBe("tls://***@10.0.0.1:4222");
		// Unescaped "@" and "/" in a password are still hidden.
		expect(redactServerUrl("nats://u:p@s/s@h:4222")).toBe("nats://***@h:4222");
	});

	it("leaves URLs without credentials alone", () => {
		expect(redactServerUrl("nats://127.0.0.1:4222")).toBe("nats://127.0.0.1:4222");
		expect(redactServerUrl("127.0.0.1:4222")).toBe("127.0.0.1:4222");
	});
});

describe("splitCredentials", () => {
	it("takes user and password, or a token, out of the URLs", () => {
		expect(
			splitCredentials([
				"nats://sig%40nal:p%3Ass@10.0.0.1:4222",
				"nats://sig%40nal:p%3Ass@10.0.0.2:4222",
			]),
		).toEqual({
			servers: ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"],
			credentials: { user: "sig@nal", pass: "p:ss" },
		});
		expect(splitCredentials(["nats://t0ken@h:4222", "nats://h2:4222"])).toEqual({
			servers: ["nats://h:4222", "nats://h2:4222"],
			credentials: { token: "t0ken" },
		});
		expect(splitCredentials(["nats://h:4222"])).toEqual({
			servers: ["nats://h:4222"],
			credentials: undefined,
		});
	});

	it("refuses URLs with different credentials, without printing them", () => {
		expect(() => splitCredentials(["nats://a:one@h1:4222", "nats://a:two@h2:4222"])).toThrow(
			/different credentials \(nats:\/\/\*\*\*@h1:4222, nats:\/\/\*\*\*@h2:4222\)/,
		);
	});
});
