/**
 * The Node (V8) flags the daemon runs with: the systemd unit puts them on its
 * ExecStart line (cli/systemd.ts), and the overlay-rss benchmark starts its
 * daemons and its bare-node baseline with them. V8 reads them only at start-up
 * (v8.setFlagsFromString cannot shrink a heap that already exists).
 *
 * --max-semi-space-size=1 (MB): V8's young generation may otherwise grow to
 * 2 × 16 MB once the daemon has been busy (an `up`, ten negotiations) and
 * stays that size while idle. A 1 MB semi-space costs more frequent scavenges,
 * which an agent that does little between network map updates does not feel.
 * Measured in docs/benchmarks.md ("overlay-rss (issue 11)").
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=1"];
