/** Undoes one step of a bring-up. */
export type Undo = () => Promise<void> | void;

/** What a failed undo is reported with (undo goes on with the other steps). */
export type UndoFailure = (step: string, err: unknown) => void;

/**
 * Records the steps of a bring-up as they succeed, each with its own undo.
 * Handed to the steps by `bringUp`; a step registers its undo right after
 * it made something that must be taken away again.
 */
export class BringUpSteps {
	private readonly undos: { step: string; undo: Undo }[] = [];

	/** Runs a step; when it succeeds and `undo` is given, `undo(result)` is registered. */
	async run<T>(
		step: string,
		make: () => Promise<T> | T,
		undo?: (made: T) => Promise<void> | void,
	): Promise<T> {
		const made = await make();
		if (undo) this.undos.push({ step, undo: () => undo(made) });
		return made;
	}

	/** Registers an undo for something made outside `run` (e.g. a synchronous constructor). */
	onUndo(step: string, undo: Undo): void {
		this.undos.push({ step, undo });
	}

	/** Undoes every registered step, last first; a failing undo is reported and the rest still run. */
	async undoAll(onFailure: UndoFailure): Promise<void> {
		const undos = this.undos.splice(0).reverse();
		for (const { step, undo } of undos) {
			try {
				await undo();
			} catch (err) {
				onFailure(step, err);
			}
		}
	}
}

/** A running set of things and the one call that takes them all down again. */
export interface BroughtUp<T> {
	running: T;
	/** Undoes every step in reverse order. Safe to call twice (the second call does nothing). */
	undo(): Promise<void>;
}

/**
 * Runs `build` with a step recorder. On success returns what it built and
 * its undo; when step N fails, steps N-1..1 are undone in reverse order and
 * the step's error is rethrown.
 */
export async function bringUp<T>(
	build: (steps: BringUpSteps) => Promise<T>,
	onUndoFailure: UndoFailure,
): Promise<BroughtUp<T>> {
	const steps = new BringUpSteps();
	let running: T;
	try {
		running = await build(steps);
	} catch (err) {
		await steps.undoAll(onUndoFailure);
		throw err;
	}
	return { running, undo: () => steps.undoAll(onUndoFailure) };
}
