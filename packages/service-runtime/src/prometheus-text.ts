/**
 * Reads a Prometheus text exposition (format 0.0.4) into a map from series,
 * written as `name{label="value",...}` with labels in the order served, to
 * value. Comments and blank lines are skipped. Meant for tests and checks
 * that scrape a real /metrics; it does not unescape label values.
 */
export function parsePrometheusText(text: string): Map<string, number> {
	const series = new Map<string, number>();
	for (const line of text.split("\n")) {
		if (line === "" || line.startsWith("#")) continue;
		// The value is the first field after the series; an optional timestamp may follow it.
		const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?)\s+(\S+)(?:\s+-?\d+)?$/.exec(line);
		if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
		const [, name = "", value = ""] = match;
		series.set(name, parseSampleValue(value));
	}
	return series;
}

function parseSampleValue(text: string): number {
	if (text === "+Inf") return Number.POSITIVE_INFINITY;
	if (text === "-Inf") return Number.NEGATIVE_INFINITY;
	// prom-client writes "Nan" for a gauge not sampled yet (e.g. event loop lag).
	if (text.toLowerCase() === "nan") return Number.NaN;
	const value = Number(text);
	if (Number.isNaN(value)) throw new Error(`not a sample value: ${text}`);
	return value;
}
