import type { D1CheckpointStore } from "./d1-checkpoint-store.js";
import {
  CheckpointConflictError,
  CheckpointStoreError,
  CheckpointTypeError,
  messageOf,
} from "./errors.js";
import { checkFunction, checkInteger, checkName, checkOptions, checkSignal } from "./validate.js";

const DEFAULT_BATCH_SIZE = 100;
const MAX_BATCH_SIZE = 10_000;

/** The least an event must carry: its position in the log, a positive safe integer. */
export interface PositionedEvent {
  /** Position in the event log; strictly ascending. */
  readonly position: number;
}

/** What `onError` decides for an event that `project` rejected. */
export type EventErrorDecision = "skip" | "stop";

/** Configuration of a {@link ProjectionRunner}. */
export interface ProjectionRunnerOptions<Event extends PositionedEvent> {
  /** The projection's checkpoint name. */
  readonly name: string;
  /** Where the checkpoint lives; the read model is written through the same database. */
  readonly store: D1CheckpointStore;
  /**
   * Reads up to `limit` events with a position greater than `after`, ascending
   * by position. An empty result means the projection has caught up.
   */
  readonly readEvents: (after: number, limit: number) => Promise<readonly Event[]>;
  /**
   * Turns events into read-model statements, without running them. It must be
   * pure (no I/O, same statements for the same events): the runner may call it
   * again on single events to find one that throws. Keep each statement within
   * D1's 100 bound parameters.
   */
  readonly project: (events: readonly Event[]) => readonly D1PreparedStatement[] | Promise<readonly D1PreparedStatement[]>;
  /** Events per batch (and per commit): 1 to 10,000, default 100. */
  readonly batchSize?: number | undefined;
  /**
   * Called when `project` throws for an event: `"skip"` leaves the event out
   * (the checkpoint still moves past it), `"stop"` (the default without a
   * hook) ends the run with a {@link ProjectionError}.
   */
  readonly onError?: ((error: unknown, event: Event) => EventErrorDecision | Promise<EventErrorDecision>) | undefined;
}

/** Options of {@link ProjectionRunner.run}. */
export interface RunOptions {
  /**
   * The most batches this run commits. Each batch costs one `readEvents`
   * query plus one `batch()` of (1 + statements) queries; the run adds one
   * `load`. Use it to stay under D1's queries-per-invocation limit (1,000;
   * 50 on the free plan).
   */
  readonly maxBatches?: number | undefined;
  /** Stops the run before its next round trip. */
  readonly signal?: AbortSignal | undefined;
}

/** What a run did. */
export interface RunSummary {
  /** The projection's name. */
  readonly name: string;
  /** The checkpoint when the run started (0 when there was none). */
  readonly from: number;
  /** The checkpoint when the run ended. */
  readonly to: number;
  /** Events projected and committed (skipped ones excluded). */
  readonly events: number;
  /** Positions `onError` chose to skip. */
  readonly skipped: readonly number[];
  /** Batches committed. */
  readonly batches: number;
  /** Whether the run stopped because another invocation had moved the checkpoint. */
  readonly conflict: boolean;
  /** Whether the run saw the end of the log (a batch shorter than `batchSize`). */
  readonly caughtUp: boolean;
}

/** `project` threw for an event, or `readEvents` broke its contract. */
export class ProjectionError extends CheckpointStoreError {
  /** The class name, for logs. */
  override name = "ProjectionError";
  /** The position of the event at fault, when there is one. */
  readonly position: number | undefined;

  constructor(checkpoint: string, position: number | undefined, message: string, options?: { cause?: unknown }) {
    super("run", checkpoint, message, options);
    this.position = position;
  }
}

/**
 * Runs a projection: reads events after the checkpoint and commits, batch by
 * batch, the read-model statements together with the new checkpoint in one D1
 * batch, on condition that the checkpoint is still where this run left it.
 *
 * Effects are exactly-once: a crash between batches loses nothing (the next
 * run resumes at the checkpoint), and of overlapping runs only one commits a
 * given batch; the others stop with `conflict: true` and apply nothing.
 */
export class ProjectionRunner<Event extends PositionedEvent> {
  readonly #options: ProjectionRunnerOptions<Event>;
  readonly #batchSize: number;

  /** Checks the configuration; nothing is sent until {@link ProjectionRunner.run}. */
  constructor(options: ProjectionRunnerOptions<Event>) {
    const name = checkName("configure", options.name, "options.name");
    for (const key of ["readEvents", "project"] as const) {
      if (typeof options[key] !== "function") {
        throw new CheckpointTypeError("configure", name, `options.${key}`, "must be a function");
      }
    }
    checkFunction("configure", name, options.onError, "options.onError");
    this.#batchSize = checkInteger("configure", name, options.batchSize, "options.batchSize", {
      min: 1,
      max: MAX_BATCH_SIZE,
      fallback: DEFAULT_BATCH_SIZE,
    });
    this.#options = options;
  }

  /** The projection's checkpoint name. */
  get name(): string {
    return this.#options.name;
  }

  /** Projects events until caught up, `maxBatches` is reached, or another run gets ahead. */
  async run(options?: RunOptions): Promise<RunSummary> {
    const { name, store } = this.#options;
    const { maxBatches: limit, signal: rawSignal } = checkOptions("run", name, options);
    const maxBatches = checkInteger("run", name, limit, "options.maxBatches", {
      min: 1,
      max: Number.MAX_SAFE_INTEGER,
      fallback: Number.POSITIVE_INFINITY,
    });
    const signal = checkSignal("run", name, rawSignal);

    const start = await store.load(name, { signal });
    let expected: number | null = start.found ? start.position : null;
    let position = start.position;
    let events = 0;
    let batches = 0;
    const skipped: number[] = [];
    const summary = (conflict: boolean, caughtUp: boolean): RunSummary => ({
      name,
      from: start.position,
      to: position,
      events,
      skipped,
      batches,
      conflict,
      caughtUp,
    });

    while (batches < maxBatches) {
      signal?.throwIfAborted();
      const batch = await this.#options.readEvents(position, this.#batchSize);
      checkBatch(name, position, batch, this.#batchSize);
      const last = batch.at(-1);
      if (last === undefined) return summary(false, true);

      const { statements, kept } = await this.#project(batch, skipped);
      try {
        await store.commit(name, last.position, statements, { expected, signal });
      } catch (error) {
        if (error instanceof CheckpointConflictError) return summary(true, false);
        throw error;
      }
      expected = position = last.position;
      events += kept;
      batches += 1;
      if (batch.length < this.#batchSize) return summary(false, true);
    }
    return summary(false, false);
  }

  /** Projects a batch; when it throws, finds the event at fault and asks `onError`. */
  async #project(batch: readonly Event[], skipped: number[]): Promise<{ statements: D1PreparedStatement[]; kept: number }> {
    const { project, onError, name } = this.#options;
    try {
      return { statements: [...(await project(batch))], kept: batch.length };
    } catch (batchError) {
      const kept: Event[] = [];
      for (const event of batch) {
        try {
          await project([event]);
          kept.push(event);
        } catch (error) {
          const decision = onError === undefined ? "stop" : await onError(error, event);
          if (decision !== "skip") {
            throw new ProjectionError(name, event.position, `project rejected the event at position ${event.position}: ${messageOf(error)}`, {
              cause: error,
            });
          }
          skipped.push(event.position);
        }
      }
      if (kept.length === batch.length) {
        throw new ProjectionError(name, undefined, `project rejected a batch but none of its events alone: ${messageOf(batchError)}`, {
          cause: batchError,
        });
      }
      return { statements: kept.length === 0 ? [] : [...(await project(kept))], kept: kept.length };
    }
  }
}

/** `readEvents` must return at most `limit` events after `after`, strictly ascending. */
function checkBatch(name: string, after: number, batch: readonly PositionedEvent[], limit: number): void {
  if (!Array.isArray(batch) || batch.length > limit) {
    throw new ProjectionError(name, undefined, `readEvents must return an array of at most ${limit} events`);
  }
  let previous = after;
  for (const event of batch) {
    const position = (event as { position?: unknown } | null)?.position;
    if (typeof position !== "number" || !Number.isSafeInteger(position) || position <= previous) {
      throw new ProjectionError(
        name,
        undefined,
        `readEvents returned position ${String(position)} after ${previous}: positions must be safe integers, strictly ascending, after the checkpoint`,
      );
    }
    previous = position;
  }
}
