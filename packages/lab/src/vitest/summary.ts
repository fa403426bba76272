export interface SkippedLabFile {
	file: string;
	/** Tests of this file that were skipped. */
	tests: number;
}

/** The one line printed after a run that skipped lab tests on request; undefined if none were. */
export function skippedLabSummary(
	files: readonly SkippedLabFile[],
	reason: string,
): string | undefined {
	const skipped = files.filter((f) => f.tests > 0);
	if (skipped.length === 0) return undefined;
	const tests = skipped.reduce((sum, f) => sum + f.tests, 0);
	const names = skipped.map((f) => f.file).sort();
	return `skipped ${tests} network-lab test${tests === 1 ? "" : "s"} in ${names.length} file${names.length === 1 ? "" : "s"} (${names.join(", ")}): ${reason}`;
}
