// The images' HEALTHCHECK: asks the service in this container whether it is
// ready (GET /readyz), on the port its own STARLING_*_LISTEN names (exit 0
// healthy, 1 not). The image has node and sh only, no curl.
//   node /app/healthcheck.mjs management|signal|relay
import { request as httpRequest } from "node:http";
import { connect } from "node:http2";
import { request as httpsRequest } from "node:https";

const TIMEOUT_MS = 2500;
const service = process.argv[2];
// Unhealthy unless a probe below says otherwise, also if the event loop just
// runs dry (e.g. a connection closed without an answer or an error).
process.exitCode = 1;
setTimeout(() => done(false, "no answer in time"), TIMEOUT_MS + 500).unref();
// The same settings the service read: environment over STARLING_CONFIG_FILE.
const settings = await import("./node_modules/@starling/service-runtime/dist/index.js").then(
	(runtime) => runtime.resolveSettings(process.env),
	() => process.env,
);

/** The address to probe: the listen address, with a wildcard host replaced by loopback. */
function target(variable, defaultPort) {
	const text = settings[variable] || `0.0.0.0:${defaultPort}`;
	const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(text);
	if (!match) return { host: "127.0.0.1", port: defaultPort };
	const host = match[1] ?? match[2];
	const wildcard = host === "0.0.0.0" || host === "::";
	return {
		host: wildcard ? (host === "::" ? "::1" : "127.0.0.1") : host,
		port: Number(match[3]),
	};
}

function done(healthy, why) {
	if (!healthy) process.stderr.write(`unhealthy: ${why}\n`);
	process.exit(healthy ? 0 : 1);
}

function httpGet(request, { host, port }, path) {
	const req = request(
		{ host, port, path, timeout: TIMEOUT_MS, rejectUnauthorized: false },
		(res) => {
			res.resume();
			done(res.statusCode === 200, `GET ${path}: HTTP ${res.statusCode}`);
		},
	);
	req.on("timeout", () => req.destroy(new Error("timed out")));
	req.on("error", (err) => done(false, `GET ${path}: ${err.message}`));
	req.on("close", () => done(false, `GET ${path}: connection closed without an answer`));
	req.end();
}

/**
 * A gRPC call to a path no service defines: any HTTP 200 with a gRPC status
 * proves the server handles calls. For signal with its metrics listener off.
 */
function grpcAnswers({ host, port }) {
	const session = connect(`http://${host.includes(":") ? `[${host}]` : host}:${port}`);
	session.setTimeout(TIMEOUT_MS, () => done(false, "gRPC: timed out"));
	session.on("error", (err) => done(false, `gRPC: ${err.message}`));
	const stream = session.request({
		":method": "POST",
		":path": "/starling.healthcheck.v1.None/Check",
		"content-type": "application/grpc",
		te: "trailers",
	});
	stream.on("response", (headers) => {
		done(headers[":status"] === 200, `gRPC: HTTP ${headers[":status"]}`);
	});
	stream.on("error", (err) => done(false, `gRPC: ${err.message}`));
	stream.on("close", () => done(false, "gRPC: stream closed without an answer"));
	session.on("close", () => done(false, "gRPC: connection closed without an answer"));
	stream.end(Buffer.alloc(5));
}

switch (service) {
	case "management":
		// Ready: serving, and the store answers a query.
		httpGet(httpRequest, target("STARLING_MANAGEMENT_LISTEN", 33073), "/readyz");
		break;
	case "signal":
		if (settings.STARLING_SIGNAL_METRICS_LISTEN === "off") {
			grpcAnswers(target("STARLING_SIGNAL_LISTEN", 10000));
		} else {
			httpGet(httpRequest, target("STARLING_SIGNAL_METRICS_LISTEN", 9091), "/readyz");
		}
		break;
	case "relay": {
		const tls = Boolean(settings.STARLING_RELAY_TLS_CERT_FILE);
		httpGet(tls ? httpsRequest : httpRequest, target("STARLING_RELAY_LISTEN", 33080), "/readyz");
		break;
	}
	default:
		done(false, `usage: node healthcheck.mjs management|signal|relay (got ${service})`);
}
