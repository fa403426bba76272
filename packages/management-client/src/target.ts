import { createSecureContext } from "node:tls";
import * as grpc from "@grpc/grpc-js";

export interface GrpcTarget {
	address: string;
	credentials: grpc.ChannelCredentials;
}

/**
 * "http://host:port" or "host:port" -> plaintext; "https://host:port" -> TLS.
 * Plaintext is safe for management: every body is sealed end to end.
 */
export function parseGrpcTarget(url: string): GrpcTarget {
	const m = /^(?:(https?):\/\/)?([^/\s]+?)(?::(\d{1,5}))?\/?$/.exec(url.trim());
	if (!m?.[2])
		throw new Error(`not a service URL: '${url}' (expected e.g. http://127.0.0.1:33073)`);
	const tls = m[1] === "https";
	const port = m[3] ?? (tls ? "443" : m[1] === "http" ? "80" : undefined);
	if (!port || Number(port) > 65535) throw new Error(`service URL '${url}' needs a valid port`);
	return {
		address: `${m[2]}:${port}`,
		credentials: tls ? defaultTlsCredentials() : grpc.credentials.createInsecure(),
	};
}

/**
 * TLS credentials trusting this process's default CA certificates: Node's
 * bundled ones, NODE_EXTRA_CA_CERTS, and whatever the process added with
 * tls.setDefaultCACertificates (the agent adds the system store). Built on
 * a context made here because grpc-js's createSsl() does not follow
 * setDefaultCACertificates.
 */
export function defaultTlsCredentials(): grpc.ChannelCredentials {
	return grpc.credentials.createFromSecureContext(createSecureContext());
}
