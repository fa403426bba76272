// How the management process should be started: Node flags and environment
// that cannot be set from inside the process (V8 sizes its heap and glibc its
// allocator before main.js runs). Whatever starts management uses these:
// scripts/start-control-plane.mjs and the benchmarks import them, and
// docker/Dockerfile repeats them (keep the two in step).
//
// Why, measured with bench/src/sync-fanout.ts (1,000 agents; Node 24.22.3):
// - --max-semi-space-size=16: Node 24's V8 lets each young-generation
//   semi-space grow to 64 MB on a 64-bit machine (Node 20's: 16 MB). Under a
//   login or connect storm the young generation grows to that maximum and its
//   pages stay resident: ~100 MB of the 345 MB with 1,000 Sync streams. 16 MB
//   is Node 20's default, what management was sized and measured with.
// - MALLOC_MMAP_THRESHOLD_=131072: glibc raises its mmap threshold (up to
//   32 MB) each time a large mmapped block is freed, after which the large,
//   short-lived buffers of full network maps (~150 KB each with 1,000 peers,
//   sealed and framed copies of it) come from the heap and fragment it: ~70
//   MB stayed resident after the connect storm. A fixed threshold keeps them
//   mmapped, so freeing one returns it to the system. Other C libraries
//   ignore the variable.

/** Node command-line flags for the management process, before the script. */
export const MANAGEMENT_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=16"];

/** Environment for the management process, on top of its configuration. */
export const MANAGEMENT_PROCESS_ENV: Readonly<Record<string, string>> = {
	MALLOC_MMAP_THRESHOLD_: "131072",
};
