#!/usr/bin/env node
// The `starling` command's entry: turns Node's compile cache on before the CLI
// itself is loaded (the cache covers only modules loaded after that), then
// runs it. Kept tiny: everything here is compiled afresh on every run.
import { enableCliCompileCache } from "./compile-cache.js";

enableCliCompileCache();
await import("./cli.js");
