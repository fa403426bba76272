#!/usr/bin/env node
// Builds the agent's release artifact for linux-x64: a tarball that runs on a
// Debian/Ubuntu server with nothing from npm, laid out as
//
//   starling-agent-<version>-linux-x64/
//     bin/node                 the Node runtime that built it: the project's Node 24
//                              (scripts/node-version; .tools/node, installed by scripts/setup.sh)
//     bin/starling             sh wrapper: bin/node lib/starling.js "$@" (with the daemon's V8 flags for `service run`)
//     lib/starling.js          the entry: turns Node's compile cache on, then loads
//     lib/starling-cli.js      the CLI's parsing and its light commands (status, version,
//                              down, login, logout): no grpc-js, no daemon code
//     lib/starling-commands.js up, netcheck and service (service run is the daemon),
//                              loaded by starling-cli.js only for those commands
//     lib/ice-worker.js        the ICE worker the daemon forks (a second entry point)
//     node_modules/@node-datachannel/linux-x64-gnu/   the prebuilt native addon
//     package.json             name, version (read by `starling version`), type: module
//     install.sh               scripts/install.sh
//     LICENSES/                licenses of what is bundled
//
// Run `pnpm build` first (pnpm release:agent does both). Prints the tarball's path last.
//   usage: node scripts/release/build-agent.mjs [--out DIR]

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
	chmodSync,
	copyFileSync,
	existsSync,
	mkdirSync,
	readFileSync,
	rmSync,
	writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const AGENT = join(ROOT, "apps/agent");
const PLATFORM = "linux-x64";
const NATIVE_PACKAGE = "@node-datachannel/linux-x64-gnu";

function fail(message) {
	process.stderr.write(`release: ${message}\n`);
	process.exit(1);
}

const { values } = parseArgs({ options: { out: { type: "string" } } });
const outDir = resolve(values.out ?? join(ROOT, "dist/release"));

if (process.platform !== "linux" || process.arch !== "x64") {
	fail(`the ${PLATFORM} artifact carries this machine's node binary: build it on ${PLATFORM}`);
}
// The tarball ships this very binary: it must be the pinned Node 24 LTS, never
// whatever `node` the machine has (pnpm release:agent runs through scripts/node24.sh).
const pinnedNode = readFileSync(join(ROOT, "scripts/node-version"), "utf8").trim();
if (process.versions.node !== pinnedNode) {
	fail(
		`the release ships Node ${pinnedNode} (scripts/node-version), this is ${process.version}: run 'pnpm release:agent'`,
	);
}
const nodeMajor = Number(process.versions.node.split(".")[0]);
for (const entry of [
	"dist/cli/main.js",
	"dist/cli/cli.js",
	"dist/cli/commands.js",
	"dist/ice/ice-worker.js",
	"dist/daemon/node-flags.js",
]) {
	if (!existsSync(join(AGENT, entry))) fail(`apps/agent/${entry} is missing: run 'pnpm build'`);
}

const { version } = JSON.parse(readFileSync(join(AGENT, "package.json"), "utf8"));
const name = `starling-agent-${version}-${PLATFORM}`;
const stage = join(outDir, name);
rmSync(stage, { recursive: true, force: true });
mkdirSync(join(stage, "bin"), { recursive: true });

// esbuild is a root devDependency; resolve it from the root so this works from any cwd.
const esbuild = await import(createRequire(join(ROOT, "package.json")).resolve("esbuild"));

// The bundle is ESM, but some dependencies are CommonJS and call require() for
// Node built-ins: give them one. No top-level `const require`, which would
// clash with node-datachannel's own createRequire shim inside the bundle.
const banner = [
	'import { createRequire as __starlingCreateRequire } from "node:module";',
	"globalThis.require ??= __starlingCreateRequire(import.meta.url);",
].join("\n");

const common = {
	absWorkingDir: ROOT,
	outdir: join(stage, "lib"),
	bundle: true,
	platform: "node",
	format: "esm",
	target: `node${nodeMajor}`,
	legalComments: "eof",
	metafile: true,
	logLevel: "warning",
};

/**
 * An esbuild plugin that leaves the import of `specifier` from a module of
 * the agent's dist/cli/ as a run-time import of `replacement` (a sibling file
 * in lib/), so that module is loaded only when the code gets there.
 */
function loadAtRunTime(specifier, replacement) {
	return {
		name: `run-time ${specifier}`,
		setup(build) {
			build.onResolve({ filter: /^\.\/[\w-]+\.js$/ }, (args) =>
				args.path === specifier && args.importer.startsWith(join(AGENT, "dist/cli/"))
					? { path: replacement, external: true }
					: undefined,
			);
		},
	};
}

// The light CLI uses the generated codecs and service paths of @starling/proto,
// whose modules also build grpc-js client classes at load time; the light CLI
// asks the daemon through the status socket (src/cli/status-call.ts) or its own
// http2 gRPC client (src/cli/daemon-call.ts) and never uses those classes. Here grpc-js is a stand-in that throws if a class were built,
// so that `starling status` does not load grpc-js's ~1 MB.
const grpcJsNotInCli = {
	name: "grpc-js not in the light CLI",
	setup(build) {
		build.onResolve({ filter: /^@grpc\/grpc-js$/ }, () => ({
			path: "grpc-js",
			namespace: "starling-cli-stand-in",
		}));
		build.onLoad({ filter: /.*/, namespace: "starling-cli-stand-in" }, () => ({
			contents: `export function makeGenericClientConstructor() {
	return class {
		constructor() {
			throw new Error("grpc-js clients are not in starling-cli.js; use them from starling-commands.js");
		}
	};
}`,
			loader: "js",
		}));
	},
};

const builds = await Promise.all([
	// The entry: small, as it is compiled afresh on every run (the cache starts after it).
	esbuild.build({
		...common,
		entryPoints: { starling: join(AGENT, "dist/cli/main.js") },
		plugins: [loadAtRunTime("./cli.js", "./starling-cli.js")],
	}),
	esbuild.build({
		...common,
		entryPoints: { "starling-cli": join(AGENT, "dist/cli/cli.js") },
		plugins: [loadAtRunTime("./commands.js", "./starling-commands.js"), grpcJsNotInCli],
		// Unused generated client classes are dropped rather than built at load.
		pure: ["makeGenericClientConstructor"],
	}),
	esbuild.build({
		...common,
		entryPoints: {
			"starling-commands": join(AGENT, "dist/cli/commands.js"),
			// defaultWorkerPath() looks for ice-worker.js beside the module that forks it.
			"ice-worker": join(AGENT, "dist/ice/ice-worker.js"),
		},
		// Loaded at run time from node_modules/ beside lib/ (see node-datachannel's loadBinding).
		external: [NATIVE_PACKAGE, "*.node"],
		banner: { js: banner },
	}),
]);

// The light CLI must stay light: only the protobuf runtime may come from node_modules.
const cliPackages = Object.keys(builds[1].metafile.inputs)
	.map((input) => /.*node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input)?.[1])
	.filter((pkg) => pkg !== undefined && pkg !== "@bufbuild/protobuf");
if (cliPackages.length > 0) {
	fail(
		`lib/starling-cli.js bundles ${[...new Set(cliPackages)].join(", ")}: keep them in starling-commands.js`,
	);
}

// node-datachannel picks its platform package at run time; copy the one for linux-x64 glibc.
const agentRequire = createRequire(join(AGENT, "package.json"));
const datachannelEntry = agentRequire.resolve("node-datachannel");
const nativeManifest = createRequire(datachannelEntry).resolve(`${NATIVE_PACKAGE}/package.json`);
const nativeDir = dirname(nativeManifest);
const nativeTarget = join(stage, "node_modules", NATIVE_PACKAGE);
mkdirSync(nativeTarget, { recursive: true });
for (const file of ["package.json", "node_datachannel.node"]) {
	copyFileSync(join(nativeDir, file), join(nativeTarget, file));
}

// Licenses of the runtime and of every package in the bundle that ships one.
const licenses = join(stage, "LICENSES");
mkdirSync(licenses);
// package name -> its folder, for every package with a file in the bundle.
const bundledPackages = new Map();
for (const input of builds.flatMap((b) => Object.keys(b.metafile.inputs))) {
	const match = /^(.*node_modules\/((?:@[^/]+\/)?[^/]+))\//.exec(input);
	if (match) bundledPackages.set(match[2], resolve(ROOT, match[1]));
}
bundledPackages.set(NATIVE_PACKAGE, nativeDir);
const licenseIndex = [];
for (const [pkg, dir] of [...bundledPackages].sort(([a], [b]) => a.localeCompare(b))) {
	const file = ["LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE", "license"].find((f) =>
		existsSync(join(dir, f)),
	);
	if (file) copyFileSync(join(dir, file), join(licenses, `${pkg.replace("/", "__")}.txt`));
	const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
	const declared = typeof manifest.license === "string" ? manifest.license : "see the package";
	licenseIndex.push(
		`${pkg} ${manifest.version}: ${declared}${file ? "" : " (no license file shipped)"}`,
	);
}
// Node's own license: beside the binary in an official tarball, in doc/ for distribution packages.
const nodeLicense = [
	join(dirname(process.execPath), "../LICENSE"),
	join(dirname(process.execPath), "../share/doc/node/LICENSE"),
	join(dirname(process.execPath), "../share/doc/nodejs/LICENSE"),
].find((f) => existsSync(f));
if (nodeLicense) copyFileSync(nodeLicense, join(licenses, "node.txt"));
licenseIndex.unshift(
	`node ${process.version}${nodeLicense ? "" : " (license file not found beside the binary)"}`,
);
writeFileSync(join(licenses, "INDEX.txt"), `${licenseIndex.join("\n")}\n`);

// The runtime: this very node binary (dynamically linked against glibc and libstdc++).
copyFileSync(process.execPath, join(stage, "bin/node"));
chmodSync(join(stage, "bin/node"), 0o755);
// The daemon's V8 flags, the same the systemd unit gives it (apps/agent/src/daemon/node-flags.ts).
const { DAEMON_NODE_FLAGS } = await import(
	pathToFileURL(join(AGENT, "dist/daemon/node-flags.js")).href
);
writeFileSync(
	join(stage, "bin/starling"),
	`#!/bin/sh
# The Starling agent CLI, with the Node runtime shipped beside it.
self=$(readlink -f "$0")
if [ "\${1:-}" = service ] && [ "\${2:-}" = run ]; then
	# The daemon, with the V8 flags its systemd unit gives it.
	exec "\${self%/*}/node" ${DAEMON_NODE_FLAGS.join(" ")} "\${self%/*}/../lib/starling.js" "$@"
fi
exec "\${self%/*}/node" "\${self%/*}/../lib/starling.js" "$@"
`,
	{ mode: 0o755 },
);
writeFileSync(
	join(stage, "package.json"),
	`${JSON.stringify(
		{ name: "@starling/agent", version, private: true, type: "module", node: process.version },
		null,
		2,
	)}\n`,
);
copyFileSync(join(ROOT, "scripts/install.sh"), join(stage, "install.sh"));
chmodSync(join(stage, "install.sh"), 0o755);

// Smoke test before packing: the staged CLI runs and reports the version.
const reported = execFileSync(join(stage, "bin/starling"), ["version"], {
	encoding: "utf8",
}).trim();
if (reported !== version)
	fail(`the staged CLI reports version '${reported}', expected '${version}'`);
// ... and a command of starling-commands.js fails as that bundle says (one line, exit 2).
try {
	execFileSync(join(stage, "bin/starling"), ["service", "no-such-action"], { stdio: "pipe" });
	fail("the staged CLI accepted 'service no-such-action'");
} catch (err) {
	const stderr = String(err.stderr ?? "");
	if (err.status !== 2 || !stderr.startsWith("starling: unknown service action")) {
		fail(
			`the staged CLI failed 'service no-such-action' with exit ${err.status}: ${stderr.trim()}`,
		);
	}
}

const tarball = join(outDir, `${name}.tar.gz`);
execFileSync("tar", ["-C", outDir, "--owner=0", "--group=0", "-czf", tarball, name]);
const sha256 = createHash("sha256").update(readFileSync(tarball)).digest("hex");
writeFileSync(`${tarball}.sha256`, `${sha256}  ${name}.tar.gz\n`);
rmSync(stage, { recursive: true, force: true });
process.stdout.write(`${tarball}\n`);
