import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ExitNodeFile, parseExitNodeChoice } from "./exit-node.js";

describe("exit node choice file", () => {
	const dirs: string[] = [];
	afterEach(() => {
		for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
	});
	const dir = () => {
		const d = mkdtempSync(join(tmpdir(), "rcli-exit-"));
		dirs.push(d);
		return d;
	};

	it("is auto until chosen, then remembered across instances, mode 0600", () => {
		const d = dir();
		expect(new ExitNodeFile(d).load()).toEqual({ mode: "auto" });
		new ExitNodeFile(d).save({ mode: "use", name: "exit-a" });
		const file = new ExitNodeFile(d);
		expect(file.load()).toEqual({ mode: "use", name: "exit-a" });
		expect(statSync(file.path).mode & 0o777).toBe(0o600);
		file.save({ mode: "off" });
		expect(JSON.parse(readFileSync(file.path, "utf8"))).toEqual({ mode: "off" });
	});

	it("reads a damaged or foreign file as auto", () => {
		const d = dir();
		writeFileSync(join(d, "exit-node.json"), "{not json");
		expect(new ExitNodeFile(d).load()).toEqual({ mode: "auto" });
		expect(parseExitNodeChoice('{"mode":"use","name":""}')).toEqual({ mode: "auto" });
		expect(parseExitNodeChoice('{"mode":"use","name":3}')).toEqual({ mode: "auto" });
	});
});
