import { createServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import type * as grpc from "@grpc/grpc-js";
import type { TlsFiles } from "@starling/service-runtime";
import type { FastifyInstance } from "fastify";

const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** A connection that has not said which protocol it speaks within this time is closed. */
const FIRST_BYTES_TIMEOUT_MS = 10_000;

/** The one port of gRPC (agents) and REST (operators), plaintext or TLS. */
export interface ApiListener {
	readonly server: Server;
	/** Destroys every open connection (after the servers stopped taking calls). */
	destroyConnections(): void;
}

/**
 * Makes the listener of gRPC and REST on one port. Plaintext: the first
 * bytes of each connection decide (the HTTP/2 preface goes to gRPC, anything
 * else to the HTTP/1.1 REST server). TLS: ALPN decides first. A client
 * offering http/1.1 (curl, browsers, fetch) is given http/1.1 and reaches
 * REST; a client offering only h2 (grpc-js, other gRPC clients) is given h2
 * and reaches gRPC; without ALPN the first bytes decide as in plaintext.
 * REST is never served over HTTP/2: a client that insists on h2 alone is a
 * gRPC client here.
 */
export function createApiListener(
	tls: TlsFiles | undefined,
	injector: grpc.ConnectionInjector,
	rest: FastifyInstance,
): ApiListener {
	const sockets = new Set<Socket>();
	const track = (socket: Socket) => {
		sockets.add(socket);
		socket.on("close", () => sockets.delete(socket));
		socket.on("error", () => socket.destroy());
	};
	let server: Server;
	if (tls) {
		server = createTlsServer({
			cert: tls.cert,
			key: tls.key,
			ALPNCallback: ({ protocols }) => chooseAlpn(protocols),
		});
		// Raw TCP sockets are tracked too, so that close() also ends handshakes in progress.
		server.on("connection", track);
		server.on("secureConnection", (socket) => {
			track(socket);
			if (socket.alpnProtocol === "h2") injector.injectConnection(socket);
			else if (socket.alpnProtocol === "http/1.1") handToRest(socket, rest);
			else routeByFirstBytes(socket, injector, rest);
		});
		// A failed handshake (an agent that does not trust the certificate) is the
		// client's problem, and the client reports it; the server just drops it.
		server.on("tlsClientError", (_err, socket) => socket.destroy());
	} else {
		server = createServer((socket) => {
			track(socket);
			routeByFirstBytes(socket, injector, rest);
		});
	}
	return {
		server,
		destroyConnections() {
			for (const s of sockets) s.destroy();
		},
	};
}

/** The ALPN answer: http/1.1 when offered (REST), else h2 (gRPC), else none (handshake fails). */
export function chooseAlpn(offered: readonly string[]): string | undefined {
	if (offered.includes("http/1.1")) return "http/1.1";
	if (offered.includes("h2")) return "h2";
	return undefined;
}

function handToRest(socket: Socket, rest: FastifyInstance): void {
	rest.server.emit("connection", socket);
}

function routeByFirstBytes(
	socket: Socket,
	injector: grpc.ConnectionInjector,
	rest: FastifyInstance,
): void {
	let head = Buffer.alloc(0);
	const timer = setTimeout(() => socket.destroy(), FIRST_BYTES_TIMEOUT_MS);
	const onData = (chunk: Buffer) => {
		head = Buffer.concat([head, chunk]);
		const n = Math.min(head.length, HTTP2_PREFACE.length);
		const isHttp2 = head.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n));
		if (isHttp2 && head.length < HTTP2_PREFACE.length) return;
		socket.off("data", onData);
		clearTimeout(timer);
		socket.pause();
		socket.unshift(head);
		if (isHttp2) {
			// The HTTP/2 session reads what is buffered on the socket itself.
			injector.injectConnection(socket);
		} else {
			handToRest(socket, rest);
			socket.resume();
		}
	};
	socket.on("data", onData);
}
