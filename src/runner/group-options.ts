// What a ProjectionGroup is configured with and what a group run reports,
// the store a group with eventsQuery needs, and the error of a group whose
// projections failed: the group's public shapes.
import type { RowUsage } from "../core/row-usage.js";
import type { RunMetrics } from "./metrics.js";
import type { GroupProjectionStore, PipelinedGroupStore } from "../core/store.js";
import { CheckpointStoreError, messageOf } from "../core/errors.js";
import type { EventErrorDecision, PositionedEvent } from "./project-batch.js";
import type { RunSummary } from "./runner-options.js";
import type { RunEnd } from "./run-options.js";
import { keysOf } from "../core/validate.js";

/**
 * One projection of a group: its checkpoint name and how it turns events into writes.
 *
 * @category Group
 */
export interface GroupProjection<Event extends PositionedEvent, Writes> {
  /** The projection's checkpoint name; distinct within the group, unless each listing gives a distinct `version`. */
  readonly name: string;
  /**
   * As `ProjectionRunner`'s `version`: the group reads the version's state at
   * the start of each run and runs it as the live version (checkpoint `name`),
   * as a rebuild (`name@version`), or not at all. List a projection twice,
   * once per version, to rebuild it sharing the live version's reads. Needs
   * a store with `versions` (the D1 and Durable Object stores).
   */
  readonly version?: number | undefined;
  /** As `ProjectionRunner`'s `project`: pure, no I/O, the same writes for the same events. */
  readonly project: (events: readonly Event[]) => Writes | Promise<Writes>;
  /** As `ProjectionRunner`'s `onError`: skip, park or stop this projection (the others go on). */
  readonly onError?: ((error: unknown, event: Event) => EventErrorDecision | Promise<EventErrorDecision>) | undefined;
}

/**
 * What every group is configured with, whatever its event source.
 *
 * @category Group
 */
export interface GroupCommon<Event extends PositionedEvent, Writes> {
  /** The group's name: it names the group's lease, and its errors. */
  readonly name: string;
  /** The projections, 1 to 100, each with a distinct name. */
  readonly projections: readonly GroupProjection<Event, Writes>[];
  /** Events per batch (one read, one commit for every projection): 1 to 10,000, default 100. */
  readonly batchSize?: number | undefined;
  /** Who gets each run's report (one entry per projection), and where lag comes from (see {@link RunMetrics}); default: none. */
  readonly metrics?: RunMetrics | undefined;
}

/**
 * A group whose events come from your own function: one round trip of its own per batch.
 *
 * @category Group
 */
export interface GroupReadEventsSource<Event extends PositionedEvent, Writes> extends GroupCommon<Event, Writes> {
  /** Where the checkpoints live, and the read models with them: a D1 or a Durable Object store. */
  readonly store: GroupProjectionStore<Writes>;
  /** Reads up to `limit` events after `after`, ascending by position. */
  readonly readEvents: (after: number, limit: number) => Promise<readonly Event[]>;
  /** Not with `readEvents`. */
  readonly eventsQuery?: undefined;
}

/**
 * A group whose events are in the store's D1 database: the next read rides in each batch's commit.
 *
 * @category Group
 */
export interface GroupEventsQuerySource<Event extends PositionedEvent> extends GroupCommon<Event, readonly D1PreparedStatement[]> {
  /** The D1 store. */
  readonly store: PipelinedGroupStore;
  /** The query of up to `limit` events after `after`, ascending by position; its rows are the events. */
  readonly eventsQuery: (after: number, limit: number) => D1PreparedStatement;
  /** Not with `eventsQuery`. */
  readonly readEvents?: undefined;
  /** One lease for the whole group, named by the group's `name`: as `ProjectionRunner`'s `lease`. */
  readonly lease?: boolean | { readonly ttlMs?: number | undefined } | undefined;
}

/**
 * Configuration of a `ProjectionGroup`: exactly one of `readEvents` and `eventsQuery`.
 *
 * @category Group
 */
export type ProjectionGroupOptions<Event extends PositionedEvent, Writes = readonly D1PreparedStatement[]> =
  | GroupReadEventsSource<Event, Writes>
  | (Writes extends readonly D1PreparedStatement[] ? GroupEventsQuerySource<Event> : never);

/**
 * What a group run did for one of its projections: a run's summary, without
 * the queries (the group counts those). Its rows are those of its own
 * statements and its checkpoint's; the rows the projections share (the event
 * query, the loads of every checkpoint, the lease) are only in the group's
 * total.
 *
 * @category Group
 */
export interface GroupMemberSummary extends Omit<RunSummary, "queries" | "ended"> {
  /** Why this projection's part of the run ended: the group's end, its own conflict, or `"failed"` (see `error`). */
  readonly ended: RunEnd | "failed";
  /** What stopped this projection (a `ProjectionError`, a D1 failure of its own writes), when it failed. */
  readonly error: Error | undefined;
}

/**
 * What a group run did.
 *
 * @category Group
 */
export interface GroupRunSummary extends RowUsage {
  /** The group's name. */
  readonly name: string;
  /** One summary per projection, in the group's order. */
  readonly projections: readonly GroupMemberSummary[];
  /** Batches committed (a batch shared by several projections counts once). */
  readonly batches: number;
  /** D1 queries the run sent, as D1 counts them. */
  readonly queries: number;
  /** Why the run ended; `"failed"` when every projection had failed or conflicted. */
  readonly ended: RunEnd | "failed";
  /** Whether the run saw the end of the log. */
  readonly caughtUp: boolean;
}

/**
 * Some projections of a group failed; the others went as far as they could. The summary tells which.
 *
 * @category Errors
 */
export class ProjectionGroupError extends CheckpointStoreError {
  /** The class name, for logs. */
  override name = "ProjectionGroupError";
  /** The run's summary, each failed projection with its `error`. */
  readonly summary: GroupRunSummary;

  constructor(summary: GroupRunSummary) {
    const failed = summary.projections.filter((member) => member.error !== undefined);
    super(
      "run",
      summary.name,
      `${failed.length} of ${summary.projections.length} projections failed: ${failed.map((member) => `${member.name} (${messageOf(member.error)})`).join("; ")}`,
      { cause: failed[0]?.error },
    );
    this.summary = summary;
  }
}


/** The keys of a group's options, either source (checked against the types by keysOf). */
export const GROUP_KEYS = keysOf<Record<keyof GroupReadEventsSource<PositionedEvent, unknown> | keyof GroupEventsQuerySource<PositionedEvent>, unknown>>()([
  "name",
  "store",
  "projections",
  "batchSize",
  "readEvents",
  "eventsQuery",
  "lease",
  "metrics",
]);
