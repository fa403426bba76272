import { readFileSync } from "node:fs";
import { z } from "zod";

/** A bad configuration value; the message is one line naming the variable. */
export class ConfigError extends Error {
	override name = "ConfigError";
}

/** Names the optional JSON file of settings; read only from the environment. */
export const CONFIG_FILE_VARIABLE = "STARLING_CONFIG_FILE";

const SETTING_NAME = /^STARLING_[A-Z0-9_]+$/;

const settingValue = z.union([
	z.string(),
	z.number().refine(Number.isFinite),
	z.boolean(),
	z.array(z.string()),
]);

/**
 * The settings a service reads: the STARLING_* environment, over the JSON file
 * named by STARLING_CONFIG_FILE when there is one. The file's keys are the
 * same STARLING_* names; a list becomes comma-separated text, numbers and
 * booleans become their text, so each service validates one set of strings.
 * An environment variable wins over the file unless it is empty (empty counts
 * as unset everywhere). Throws ConfigError for an unreadable or malformed file.
 */
export function resolveSettings(env: NodeJS.ProcessEnv): Record<string, string> {
	const fromEnv: Record<string, string> = {};
	for (const [name, value] of Object.entries(env)) {
		if (name.startsWith("STARLING_") && value !== undefined && value !== "") fromEnv[name] = value;
	}
	const path = fromEnv[CONFIG_FILE_VARIABLE];
	if (path === undefined) return fromEnv;
	return { ...readConfigFile(path), ...fromEnv };
}

/** Reads a JSON settings file (see resolveSettings) as text values. */
export function readConfigFile(path: string): Record<string, string> {
	let text: string;
	try {
		text = readFileSync(path, "utf8");
	} catch (err) {
		throw new ConfigError(`${CONFIG_FILE_VARIABLE} cannot be read: ${oneLine(err)}`);
	}
	let data: unknown;
	try {
		data = JSON.parse(text);
	} catch (err) {
		throw new ConfigError(`${CONFIG_FILE_VARIABLE} ${path} is not valid JSON: ${oneLine(err)}`);
	}
	if (typeof data !== "object" || data === null || Array.isArray(data)) {
		throw new ConfigError(
			`${CONFIG_FILE_VARIABLE} ${path} must hold a JSON object of STARLING_* settings`,
		);
	}
	const settings: Record<string, string> = {};
	for (const [name, value] of Object.entries(data)) {
		if (!SETTING_NAME.test(name) || name === CONFIG_FILE_VARIABLE) {
			throw new ConfigError(
				`${CONFIG_FILE_VARIABLE} ${path}: ${JSON.stringify(name)} is not a STARLING_* setting`,
			);
		}
		const parsed = settingValue.safeParse(value);
		if (!parsed.success) {
			throw new ConfigError(
				`${name} (in ${path}) must be a string, a number, true/false or a list of strings`,
			);
		}
		const v = parsed.data;
		settings[name] = Array.isArray(v) ? v.join(",") : String(v);
	}
	return settings;
}

function oneLine(err: unknown): string {
	const text = err instanceof Error ? err.message : String(err);
	return text.replace(/\s*\n\s*/g, " ").trim();
}
