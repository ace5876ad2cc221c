// What a ProjectionRunner is configured with and what a run reports, and the
// store a runner with eventsQuery needs: the runner's public shapes.
import type { RowUsage } from "../core/row-usage.js";
import type { PipelinedProjectionStore, ProjectionStore } from "../core/store.js";
import type { EventErrorDecision, PositionedEvent } from "./project-batch.js";
import type { RunEnd } from "./run-options.js";
import type { RunMetrics } from "./metrics.js";
import { keysOf } from "../core/validate.js";

/**
 * What every runner is configured with, whatever its event source.
 *
 * @category Runner
 */
export interface RunnerCommon<Event extends PositionedEvent, Writes> {
  /** The projection's checkpoint name. */
  readonly name: string;
  /**
   * Turns events into read-model writes, without running them. It must be
   * pure (no I/O, same writes for the same events): the runner may call it
   * again on single events to find one that throws, and then on the events it
   * kept (possibly none). On D1, keep each statement within 100 bound parameters.
   */
  readonly project: (events: readonly Event[]) => Writes | Promise<Writes>;
  /** Events per batch (and per commit): 1 to 10,000, default 100. */
  readonly batchSize?: number | undefined;
  /**
   * The version of the projection this code is (from 1), for rebuilding it
   * beside the live one (see the store's `startRebuild`). Each run reads the
   * version's state: live, it projects under `name`; building, under
   * `name@version` into the new version's tables; otherwise it does nothing.
   * Every commit is fenced by that state, so a version switched away never
   * writes again. Needs migration 0003. Default: unversioned (not fenced).
   */
  readonly version?: number | undefined;
  /**
   * Called when `project` throws for an event: `"skip"` leaves the event out
   * (the checkpoint still moves past it), `"park"` leaves it out and records
   * it in the parked events in the same commit (list them with the store's
   * `parked()`, apply them later with {@link ProjectionRunner.replay}),
   * `"stop"` (the default without a hook) ends the run with a {@link ProjectionError}.
   */
  readonly onError?: ((error: unknown, event: Event) => EventErrorDecision | Promise<EventErrorDecision>) | undefined;
}

/**
 * Events read by your own function, from anywhere: one round trip of its own per batch.
 *
 * @category Runner
 */
export interface ReadEventsSource<Event extends PositionedEvent, Writes> extends RunnerCommon<Event, Writes> {
  /** Where the checkpoint lives, and the read model with it. */
  readonly store: ProjectionStore<Writes>;
  /**
   * Reads up to `limit` events with a position greater than `after`, ascending
   * by position. An empty result means the projection has caught up.
   */
  readonly readEvents: (after: number, limit: number) => Promise<readonly Event[]>;
  /** Not with `readEvents`. */
  readonly eventsQuery?: undefined;
}

/**
 * Events in the same D1 database as the checkpoint: the query for the next
 * events rides in the commit's batch, so a batch costs one round trip.
 *
 * @category Runner
 */
export interface EventsQuerySource<Event extends PositionedEvent> extends RunnerCommon<Event, readonly D1PreparedStatement[]> {
  /** The D1 store (or another store that can pipeline a query). */
  readonly store: PipelinedProjectionStore;
  /**
   * The query of up to `limit` events with a position greater than `after`,
   * ascending by position, on the store's database; its rows are the events.
   */
  readonly eventsQuery: (after: number, limit: number) => D1PreparedStatement;
  /** Not with `eventsQuery`. */
  readonly readEvents?: undefined;
  /**
   * Lets only one run at a time project: each run first claims a lease in
   * the same round trip as its load (table `projection_leases`, migration
   * 0002); a run that finds another's lease stops there (`yielded: true`)
   * after noting that work is pending, and the holder looks again before it
   * lets go. Use it where many invocations start runs at once (a run per
   * append); exactly-once never depends on it. `true` for a 30 s lease, or
   * `{ ttlMs }`: how long a run may take before another may take over.
   * Default: no lease.
   */
  readonly lease?: boolean | { readonly ttlMs?: number | undefined } | undefined;
  /** Who gets each run's report, and where its lag comes from (see {@link RunMetrics}); default: none. */
  readonly metrics?: RunMetrics | undefined;
}

/**
 * Configuration of a {@link ProjectionRunner}: exactly one of `readEvents` and `eventsQuery`.
 *
 * @category Runner
 */
export type ProjectionRunnerOptions<Event extends PositionedEvent, Writes = readonly D1PreparedStatement[]> =
  | ReadEventsSource<Event, Writes>
  | (Writes extends readonly D1PreparedStatement[] ? EventsQuerySource<Event> : never);

/**
 * What a run did. Its rows (`rowsRead`, `rowsWritten`, and the package's
 * own part of them) are what D1 reported for every statement the run sent
 * through the store; rows that `readEvents` reads itself are not among them.
 *
 * @category Runner
 */
export interface RunSummary extends RowUsage {
  /** The projection's name. */
  readonly name: string;
  /** The checkpoint when the run started (0 when there was none, or when not even its first round trip fitted in the budget). */
  readonly from: number;
  /** The checkpoint when the run ended. */
  readonly to: number;
  /**
   * Events projected and committed (skipped and parked ones excluded). A
   * batch whose commit response was lost counts as committed when the check
   * that follows finds the checkpoint at the batch's end; an overlapping run
   * may have committed that same batch, and then both summaries count its
   * events. The read model holds them once: sum summaries for a progress
   * figure only, and read the checkpoint for the truth.
   */
  readonly events: number;
  /** Positions `onError` chose to skip, in batches that committed. */
  readonly skipped: readonly number[];
  /** Positions `onError` chose to park, in batches that committed. */
  readonly parked: readonly number[];
  /** Batches committed. */
  readonly batches: number;
  /** Whether the run stopped because another invocation had moved the checkpoint. */
  readonly conflict: boolean;
  /** Whether the run saw the end of the log (a batch shorter than `batchSize`). */
  readonly caughtUp: boolean;
  /** Whether the run stopped after its first round trip because another run held the lease (only with `lease`). */
  readonly yielded: boolean;
  /** Why the run ended. */
  readonly ended: RunEnd;
  /** D1 queries the run sent, as D1 counts them (see {@link RunOptions.budget}). */
  readonly queries: number;
}


/** The keys of a runner's options, either source (checked against the types by keysOf). */
export const RUNNER_KEYS = keysOf<Record<keyof ReadEventsSource<PositionedEvent, unknown> | keyof EventsQuerySource<PositionedEvent>, unknown>>()([
  "name",
  "store",
  "project",
  "batchSize",
  "version",
  "onError",
  "readEvents",
  "eventsQuery",
  "lease",
  "metrics",
]);
