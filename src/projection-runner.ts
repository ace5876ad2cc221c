import type { LoadResult, OperationOptions, ProjectionStore, SaveOptions } from "./checkpoint-store.js";
import { CheckpointConflictError, CheckpointStoreError, CheckpointTypeError, messageOf } from "./errors.js";
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

/**
 * A store that can ride a query along with its load and its commits, in the
 * same round trip: what `ProjectionRunner` needs for `eventsQuery`.
 * {@link D1CheckpointStore} is one.
 */
export interface PipelinedProjectionStore extends ProjectionStore<readonly D1PreparedStatement[]> {
  /** Commits, then runs `query` in the same batch; its rows only when the batch committed. */
  commitAndQuery<Row>(
    name: string,
    position: number,
    statements: readonly D1PreparedStatement[],
    query: D1PreparedStatement,
    options?: SaveOptions,
  ): Promise<Row[]>;
  /** Loads the checkpoint and runs `query(checkpoint.position)`: in one round trip when it can guess the position. */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- as above
  loadAndQuery<Row>(
    name: string,
    query: (after: number) => D1PreparedStatement,
    options?: OperationOptions,
  ): Promise<{ readonly checkpoint: LoadResult; readonly rows: Row[] }>;
}

/** What every runner is configured with, whatever its event source. */
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
   * Called when `project` throws for an event: `"skip"` leaves the event out
   * (the checkpoint still moves past it), `"stop"` (the default without a
   * hook) ends the run with a {@link ProjectionError}.
   */
  readonly onError?: ((error: unknown, event: Event) => EventErrorDecision | Promise<EventErrorDecision>) | undefined;
}

/** Events read by your own function, from anywhere: one round trip of its own per batch. */
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
}

/** Configuration of a {@link ProjectionRunner}: exactly one of `readEvents` and `eventsQuery`. */
export type ProjectionRunnerOptions<Event extends PositionedEvent, Writes = readonly D1PreparedStatement[]> =
  | ReadEventsSource<Event, Writes>
  | (Writes extends readonly D1PreparedStatement[] ? EventsQuerySource<Event> : never);

/** Options of {@link ProjectionRunner.run}. */
export interface RunOptions {
  /**
   * The most batches this run commits. Use it to stay under D1's
   * queries-per-invocation limit (1,000; 50 on the free plan): see the
   * README's per-invocation budget.
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
  /** Positions `onError` chose to skip, in batches that committed. */
  readonly skipped: readonly number[];
  /** Batches committed. */
  readonly batches: number;
  /** Whether the run stopped because another invocation had moved the checkpoint. */
  readonly conflict: boolean;
  /** Whether the run saw the end of the log (a batch shorter than `batchSize`). */
  readonly caughtUp: boolean;
}

/** `project` threw for an event, or the event source broke its contract. */
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

/** The runner's configuration, checked. */
interface Config<Event extends PositionedEvent, Writes> {
  readonly name: string;
  readonly store: ProjectionStore<Writes>;
  readonly batchSize: number;
  readonly project: (events: readonly Event[]) => Writes | Promise<Writes>;
  readonly onError: ((error: unknown, event: Event) => EventErrorDecision | Promise<EventErrorDecision>) | undefined;
  readonly readEvents: ((after: number, limit: number) => Promise<readonly Event[]>) | undefined;
  readonly eventsQuery: ((after: number, limit: number) => D1PreparedStatement) | undefined;
}

/**
 * Runs a projection: reads events after the checkpoint and commits, batch by
 * batch, the read-model writes together with the new checkpoint in one
 * transaction, on condition that the checkpoint is still where this run left it.
 *
 * Effects are exactly-once: a crash between batches loses nothing (the next
 * run resumes at the checkpoint), and of overlapping runs only one commits a
 * given batch; the others stop with `conflict: true` and apply nothing.
 *
 * @example
 * ```ts
 * const runner = new ProjectionRunner<LedgerEvent>({
 *   name: "balances",
 *   store: new D1CheckpointStore(env.DB),
 *   eventsQuery: (after, limit) =>
 *     env.DB.prepare("SELECT * FROM events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
 *   project: (events) => events.map((event) => creditStatement(env.DB, event)),
 * });
 * const summary = await runner.run({ maxBatches: 8 }); // one round trip per batch
 * ```
 */
export class ProjectionRunner<Event extends PositionedEvent, Writes = readonly D1PreparedStatement[]> {
  readonly #config: Config<Event, Writes>;

  /** Checks the configuration; nothing is sent until {@link ProjectionRunner.run}. */
  constructor(options: ProjectionRunnerOptions<Event, Writes>) {
    type Loose = Partial<Omit<ReadEventsSource<Event, Writes>, "eventsQuery">> &
      Partial<Pick<EventsQuerySource<Event>, "eventsQuery">>;
    const given: unknown = options;
    if (given === undefined) throw new CheckpointTypeError("configure", undefined, "options", "must be an object, got undefined");
    const raw = checkOptions("configure", undefined, given as Loose);
    const name = checkName("configure", raw.name, "options.name");
    const store: unknown = raw.store;
    const has = (method: string): boolean =>
      typeof store === "object" && store !== null && typeof (store as Record<string, unknown>)[method] === "function";
    if (!has("load") || !has("commit")) {
      throw new CheckpointTypeError("configure", name, "options.store", "must be a store with load and commit methods");
    }
    const readEvents = checkFunction("configure", name, raw.readEvents, "options.readEvents");
    const eventsQuery = checkFunction("configure", name, raw.eventsQuery, "options.eventsQuery");
    if ((readEvents === undefined) === (eventsQuery === undefined)) {
      throw new CheckpointTypeError("configure", name, "options.readEvents", "give exactly one of readEvents and eventsQuery");
    }
    if (eventsQuery !== undefined && (!has("commitAndQuery") || !has("loadAndQuery"))) {
      throw new CheckpointTypeError("configure", name, "options.store", "must pipeline queries (a D1CheckpointStore) to use eventsQuery");
    }
    this.#config = {
      name,
      store: raw.store as ProjectionStore<Writes>,
      batchSize: checkInteger("configure", name, raw.batchSize, "options.batchSize", {
        min: 1,
        max: MAX_BATCH_SIZE,
        fallback: DEFAULT_BATCH_SIZE,
      }),
      project: checkFunction("configure", name, raw.project, "options.project", true) as Config<Event, Writes>["project"],
      onError: checkFunction("configure", name, raw.onError, "options.onError"),
      readEvents,
      eventsQuery,
    };
  }

  /** The projection's checkpoint name. */
  get name(): string {
    return this.#config.name;
  }

  /** Projects events until caught up, `maxBatches` is reached, or another run gets ahead. */
  async run(options?: RunOptions): Promise<RunSummary> {
    const { name, batchSize } = this.#config;
    const { maxBatches: limit, signal: rawSignal } = checkOptions("run", name, options);
    const maxBatches = checkInteger("run", name, limit, "options.maxBatches", {
      min: 1,
      max: Number.MAX_SAFE_INTEGER,
      fallback: Number.POSITIVE_INFINITY,
    });
    const signal = checkSignal("run", name, rawSignal);

    const { checkpoint: start, events: first } = await this.#start(signal);
    let expected: number | null = start.found ? start.position : null;
    let position = start.position;
    let batch: readonly Event[] | undefined = first;
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
      batch ??= await this.#read(position, signal);
      checkBatch(name, position, batch, batchSize);
      const last = batch.at(-1);
      if (last === undefined) return summary(false, true);

      const projected = await this.#project(batch);
      const more = batch.length === batchSize && batches + 1 < maxBatches;
      let next: readonly Event[] | undefined;
      try {
        next = await this.#commit(last.position, projected.writes, expected, more, signal);
      } catch (error) {
        if (error instanceof CheckpointConflictError && error.checkpoint === name && error.operation === "commit") {
          return summary(true, false);
        }
        throw error;
      }
      expected = position = last.position;
      events += batch.length - projected.skipped.length;
      skipped.push(...projected.skipped);
      batches += 1;
      if (batch.length < batchSize) return summary(false, true);
      batch = next;
    }
    return summary(false, false);
  }

  /** The checkpoint, and with `eventsQuery` the first events when they could ride along. */
  async #start(signal: AbortSignal | undefined): Promise<{ checkpoint: LoadResult; events: readonly Event[] | undefined }> {
    const { name, store, eventsQuery, batchSize } = this.#config;
    if (eventsQuery === undefined) return { checkpoint: await store.load(name, { signal }), events: undefined };
    const { checkpoint, rows } = await (store as unknown as PipelinedProjectionStore).loadAndQuery<Event>(
      name,
      (guess) => eventsQuery(guess, batchSize),
      { signal },
    );
    return { checkpoint, events: rows };
  }

  async #read(after: number, signal: AbortSignal | undefined): Promise<readonly Event[]> {
    const { readEvents, batchSize } = this.#config;
    if (readEvents !== undefined) return readEvents(after, batchSize);
    // With eventsQuery every batch rides along with the load or the commit before it.
    return (await this.#start(signal)).events ?? [];
  }

  /** Commits a batch; with `eventsQuery` and `more`, the next events ride along and are returned. */
  async #commit(
    position: number,
    writes: Writes,
    expected: number | null,
    more: boolean,
    signal: AbortSignal | undefined,
  ): Promise<readonly Event[] | undefined> {
    const { name, store, eventsQuery, batchSize } = this.#config;
    if (eventsQuery === undefined || !more) {
      await store.commit(name, position, writes, { expected, signal });
      return undefined;
    }
    return (store as unknown as PipelinedProjectionStore).commitAndQuery<Event>(
      name,
      position,
      writes as readonly D1PreparedStatement[],
      eventsQuery(position, batchSize),
      { expected, signal },
    );
  }

  /** Projects a batch; when it throws, finds the events at fault and asks `onError`. */
  async #project(batch: readonly Event[]): Promise<{ writes: Writes; skipped: number[] }> {
    const { project, onError, name } = this.#config;
    try {
      return { writes: await project(batch), skipped: [] };
    } catch (batchError) {
      const kept: Event[] = [];
      const skipped: number[] = [];
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
      if (skipped.length === 0) {
        throw new ProjectionError(name, undefined, `project rejected a batch but none of its events alone: ${messageOf(batchError)}`, {
          cause: batchError,
        });
      }
      try {
        return { writes: await project(kept), skipped };
      } catch (error) {
        throw new ProjectionError(
          name,
          undefined,
          `project rejected the ${kept.length} events it had accepted one by one, after skipping ${skipped.join(", ")}: ${messageOf(error)}`,
          { cause: error },
        );
      }
    }
  }
}

/** The event source must return at most `limit` events after `after`, strictly ascending. */
function checkBatch(name: string, after: number, batch: unknown, limit: number): asserts batch is readonly PositionedEvent[] {
  if (!Array.isArray(batch) || batch.length > limit) {
    throw new ProjectionError(name, undefined, `the event source must return an array of at most ${limit} events`);
  }
  let previous = after;
  for (const event of batch as unknown[]) {
    const position = (event as { position?: unknown } | null)?.position;
    if (typeof position !== "number" || !Number.isSafeInteger(position) || position <= previous) {
      throw new ProjectionError(
        name,
        undefined,
        `the event source returned position ${String(position)} after ${previous}: positions must be safe integers, strictly ascending, after the checkpoint`,
      );
    }
    previous = position;
  }
}
