import type { CommitOptions, LoadResult, OperationOptions, ParkRequest, ProjectionStore } from "./checkpoint-store.js";
import { CheckpointConflictError, messageOf } from "./errors.js";
import { checkBatch, projectBatch, ProjectionError, type EventErrorDecision, type PositionedEvent } from "./project-batch.js";
import { checkBudget, type QueryBudget } from "./query-budget.js";
import type { RunLease } from "./run-lease.js";
import {
  dropLease,
  endsOnBudget,
  startRun,
  leasing,
  parseRun,
  parseSource,
  type LeaseReleasing,
  type RunCalls as Calls,
  type RunEnd,
  type RunOptions,
} from "./run-options.js";
import { checkFunction, checkMethods, checkOptions, checkPosition, checkSignal, hasMethods } from "./validate.js";


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
    options?: CommitOptions,
  ): Promise<Row[]>;
  /**
   * Loads the checkpoint and runs `query(checkpoint.position)`: in one round
   * trip when it can guess the position. With `lease`, claims a run lease in
   * the same round trip; `leased: false` when another run holds it.
   */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the row type, as with D1's all<T>()
  loadAndQuery<Row>(
    name: string,
    query: (after: number) => D1PreparedStatement,
    options?: OperationOptions & { readonly lease?: RunLease | undefined },
  ): Promise<{ readonly checkpoint: LoadResult; readonly rows: Row[]; readonly leased: boolean }>;
  /** Lets go of a run lease (see `D1CheckpointStore.releaseLease`); needed only for runners with a `lease`. */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- as above
  releaseLease?<Row>(
    name: string,
    lease: RunLease,
    query: D1PreparedStatement | undefined,
    options?: OperationOptions & { readonly drop?: boolean | undefined },
  ): Promise<{ readonly held: boolean; readonly rows: Row[] }>;
  /** Commits a leased run's last batch and lets go of the lease in it (see `D1CheckpointStore.commitAndRelease`); optional. */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- as above
  commitAndRelease?<Row>(
    name: string,
    position: number,
    statements: readonly D1PreparedStatement[],
    lease: RunLease,
    query: D1PreparedStatement,
    options?: CommitOptions,
  ): Promise<{ readonly held: boolean; readonly rows: Row[] }>;
}

/** What committing a batch gave the run loop. */
interface CommitStep<Event> {
  /** The next events, when they rode along. */
  readonly next: readonly Event[] | undefined;
  /** A leased run's last batch found work noted pending: the lease is still this run's. */
  readonly held: boolean;
  /** A leased run's last batch let go of the lease. */
  readonly released: boolean;
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
   * (the checkpoint still moves past it), `"park"` leaves it out and records
   * it in the parked events in the same commit (list them with the store's
   * `parked()`, apply them later with {@link ProjectionRunner.replay}),
   * `"stop"` (the default without a hook) ends the run with a {@link ProjectionError}.
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
}

/** Configuration of a {@link ProjectionRunner}: exactly one of `readEvents` and `eventsQuery`. */
export type ProjectionRunnerOptions<Event extends PositionedEvent, Writes = readonly D1PreparedStatement[]> =
  | ReadEventsSource<Event, Writes>
  | (Writes extends readonly D1PreparedStatement[] ? EventsQuerySource<Event> : never);

/** What a run did. */
export interface RunSummary {
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

/** The runner's configuration, checked. */
interface Config<Event extends PositionedEvent, Writes> {
  readonly name: string;
  readonly store: ProjectionStore<Writes>;
  readonly batchSize: number;
  readonly project: (events: readonly Event[]) => Writes | Promise<Writes>;
  readonly onError: ((error: unknown, event: Event) => EventErrorDecision | Promise<EventErrorDecision>) | undefined;
  readonly readEvents: ((after: number, limit: number) => Promise<readonly Event[]>) | undefined;
  readonly eventsQuery: ((after: number, limit: number) => D1PreparedStatement) | undefined;
  readonly leaseTtlMs: number | undefined;
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
    const { raw, name, store, batchSize, readEvents, eventsQuery, leaseTtlMs } = parseSource<ProjectionStore<Writes>, Event>(
      options,
      ["load", "commit"],
      ["commitAndQuery", "loadAndQuery"],
    );
    this.#config = {
      name,
      store,
      batchSize,
      project: checkFunction("configure", name, raw.project as Config<Event, Writes>["project"] | undefined, "options.project", true),
      onError: checkFunction("configure", name, raw.onError as Config<Event, Writes>["onError"], "options.onError"),
      readEvents,
      eventsQuery,
      leaseTtlMs,
    };
  }

  /** The projection's checkpoint name. */
  get name(): string {
    return this.#config.name;
  }

  /** Projects events until caught up, `maxBatches` is reached, or another run gets ahead. */
  async run(options?: RunOptions): Promise<RunSummary> {
    const { name, batchSize, leaseTtlMs, eventsQuery } = this.#config;
    const { maxBatches, signal, budget, lease, calls } = parseRun(name, options, leaseTtlMs);
    const spentBefore = budget.spent;

    const started = await startRun(() => this.#start(calls, lease), calls, spentBefore, lease === undefined ? undefined : () => this.#drop(lease, calls));
    if (started === undefined) {
      // Not even the first round trip fitted in the budget: nothing was read, so from and to are 0.
      return { name, from: 0, to: 0, events: 0, skipped: [], parked: [], batches: 0, conflict: false, caughtUp: false, yielded: false, ended: "budget", queries: budget.spent - spentBefore };
    }
    const { checkpoint: start, events: first, leased } = started;
    let expected: number | null = start.found ? start.position : null;
    let position = start.position;
    let batch: readonly Event[] | undefined = first;
    let events = 0;
    let batches = 0;
    const skipped: number[] = [];
    const parked: number[] = [];
    const summary = (end: RunEnd): RunSummary => ({
      name,
      from: start.position,
      to: position,
      events,
      skipped,
      parked,
      batches,
      conflict: end === "conflict",
      caughtUp: end === "caughtUp",
      yielded: end === "yielded",
      ended: end,
      queries: budget.spent - spentBefore,
    });
    if (!leased) {
      calls.done();
      return summary("yielded");
    }

    let released = lease === undefined;
    let reloads = 0;
    let end: RunEnd = "maxBatches";
    try {
      // The summary is made after the finally block, so that its query count includes a lease's release.
      run: while (batches < maxBatches) {
        signal?.throwIfAborted();
        batch ??= await this.#read(position, calls);
        checkBatch(name, position, batch, batchSize);
        const last = batch.at(-1);
        if (last === undefined) {
          if (lease === undefined || eventsQuery === undefined) {
            end = "caughtUp";
            break run;
          }
          // Nothing left to commit: let go of the lease, unless another run noted work meanwhile (then go on with it).
          const { held, rows } = await this.#leasing().releaseLease<Event>(name, lease, eventsQuery(position, batchSize), {
            signal,
            budget: calls.budget,
          });
          released = !held;
          if (released) {
            end = "caughtUp";
            break run;
          }
          batch = rows;
          continue;
        }

        const projected = await this.#project(batch);
        const final = batch.length < batchSize;
        const more = !final && batches + 1 < maxBatches;
        let step: CommitStep<Event>;
        try {
          // A leased run's last batch also lets go of the lease, in the same round trip.
          step = await this.#commit(last.position, projected.writes, expected, projected.parked, more, final ? lease : undefined, calls);
        } catch (error) {
          if (!(error instanceof CheckpointConflictError && error.checkpoint === name && error.operation === "commit")) throw error;
          // A run without the lease (a cron) got ahead. The holder answers for the work others
          // noted pending, so it starts again from where that run left the checkpoint.
          if (lease === undefined || reloads >= maxBatches) {
            end = "conflict";
            break run;
          }
          reloads += 1;
          const again = await this.#start(calls);
          expected = again.checkpoint.found ? again.checkpoint.position : null;
          position = again.checkpoint.position;
          batch = again.events;
          continue;
        }
        expected = position = last.position;
        events += batch.length - projected.skipped.length - projected.parked.length;
        skipped.push(...projected.skipped);
        parked.push(...projected.parked.map((event) => event.position));
        batches += 1;
        if (step.released) released = true;
        // Caught up, unless the lease is still ours because another run noted work: then go on with it.
        if (final && !step.held) {
          end = "caughtUp";
          break run;
        }
        batch = step.next;
      }
    } catch (error) {
      // The next round trip did not fit in the query budget and was not sent: the run ends here.
      if (!endsOnBudget(error)) throw error;
      end = "budget";
    } finally {
      if (!released && lease !== undefined) {
        // Ending early (maxBatches, the query budget, a conflict, an error): let go now rather than when the lease expires.
        await this.#drop(lease, calls);
      }
      calls.done();
    }
    return summary(end);
  }

  /**
   * Projects the parked event at `position` again and, when `project`
   * accepts it, applies its writes and removes it from the parked events in
   * one transaction, without moving the checkpoint. Resolves `true` when it
   * did, `false` when no such event is parked (nothing applied). When
   * `project` rejects it again it stays parked and this rejects with a
   * {@link ProjectionError}. The event is read again from the event source
   * (`readEvents(position - 1, 1)`, or `eventsQuery(position - 1, 1)`).
   *
   * @example
   * ```ts
   * for await (const event of store.parked("balances")) await runner.replay(event.position);
   * ```
   */
  async replay(position: number, options?: OperationOptions): Promise<boolean> {
    const { name, store } = this.#config;
    const at = checkPosition("replay", name, position);
    checkMethods("replay", name, store, "options.store", ["replayParked"], "a store that can replay parked events (replayParked)");
    const given = checkOptions("replay", name, options);
    const signal = checkSignal("replay", name, given.signal);
    const budget = checkBudget("replay", name, given.budget);
    signal?.throwIfAborted();
    const found = await this.#readOne(at, signal, budget);
    const event = Array.isArray(found) ? (found[0] as Event | undefined) : undefined;
    if (event?.position !== at) {
      throw new ProjectionError(name, at, `the event source has no event at position ${at} (it returned ${String(event?.position ?? "nothing")})`);
    }
    let writes: Writes;
    try {
      writes = await this.#config.project([event]);
    } catch (error) {
      throw new ProjectionError(name, at, `project rejected the parked event at position ${at} again: ${messageOf(error)}`, { cause: error });
    }
    return store.replayParked(name, at, writes, { signal, budget });
  }

  /**
   * Reads the event at `position` for a replay. With `eventsQuery` the query
   * goes through the store (`loadAndQuery`), so it is retried and its
   * failures are the store's errors; a throwing `readEvents` is a {@link ProjectionError}.
   */
  async #readOne(position: number, signal: AbortSignal | undefined, budget: QueryBudget | undefined): Promise<unknown> {
    const { name, readEvents, eventsQuery } = this.#config;
    if (eventsQuery !== undefined) {
      return (await this.#pipelined().loadAndQuery<Event>(name, () => eventsQuery(position - 1, 1), { signal, budget })).rows;
    }
    budget?.spend(1, "replay", name); // readEvents counts as one query
    try {
      return await readEvents?.(position - 1, 1);
    } catch (error) {
      throw new ProjectionError(name, position, `readEvents failed while reading the parked event at position ${position}: ${messageOf(error)}`, {
        cause: error,
      });
    }
  }

  async #drop(lease: RunLease, calls: Calls): Promise<void> {
    await dropLease(this.#config.store, this.#config.name, lease, calls);
  }

  #leasing(): LeaseReleasing {
    return leasing(this.#config.store, this.#config.name);
  }

  #pipelined(): PipelinedProjectionStore {
    return this.#config.store as unknown as PipelinedProjectionStore;
  }

  /** The checkpoint, and with `eventsQuery` the first events when they could ride along, and whether the lease is this run's. */
  async #start(
    { signal, budget }: Calls,
    lease?: RunLease,
  ): Promise<{ checkpoint: LoadResult; events: readonly Event[] | undefined; leased: boolean }> {
    const { name, store, eventsQuery, batchSize } = this.#config;
    if (eventsQuery === undefined) return { checkpoint: await store.load(name, { signal, budget }), events: undefined, leased: true };
    const { checkpoint, rows, leased } = await this.#pipelined().loadAndQuery<Event>(name, (guess) => eventsQuery(guess, batchSize), {
      signal,
      lease,
      budget,
    });
    return { checkpoint, events: rows, leased };
  }

  async #read(after: number, calls: Calls): Promise<readonly Event[]> {
    const { name, readEvents, batchSize } = this.#config;
    if (readEvents !== undefined) {
      calls.budget.spend(1, "run", name); // readEvents counts as one query
      return readEvents(after, batchSize);
    }
    // With eventsQuery every batch rides along with the load or the commit before it.
    return (await this.#start(calls)).events ?? [];
  }

  /**
   * Commits a batch. With `eventsQuery` and `more`, the next events ride along
   * and are returned; with `release` (a leased run's last batch), the batch
   * also lets go of the lease, or learns that it is still held with the next
   * events to go on with.
   */
  async #commit(
    position: number,
    writes: Writes,
    expected: number | null,
    parked: readonly ParkRequest[],
    more: boolean,
    release: RunLease | undefined,
    { signal, budget }: Calls,
  ): Promise<CommitStep<Event>> {
    const { name, store, eventsQuery, batchSize } = this.#config;
    const options: CommitOptions = parked.length === 0 ? { expected, signal, budget } : { expected, signal, budget, parked };
    const statements = writes as readonly D1PreparedStatement[];
    if (eventsQuery !== undefined && release !== undefined) {
      const pipelined = this.#pipelined();
      if (pipelined.commitAndRelease !== undefined) {
        const { held, rows } = await pipelined.commitAndRelease<Event>(name, position, statements, release, eventsQuery(position, batchSize), options);
        return { next: rows, held, released: !held };
      }
      // A store without the optional commitAndRelease: commit, then let go in a round trip of its own,
      // which looks again (work noted pending keeps the lease, with the next events).
      await store.commit(name, position, writes, options);
      const { held, rows } = await this.#leasing().releaseLease<Event>(name, release, eventsQuery(position, batchSize), { signal, budget });
      return { next: rows, held, released: !held };
    }
    if (eventsQuery === undefined || !more) {
      await store.commit(name, position, writes, options);
      return { next: undefined, held: false, released: false };
    }
    const next = await this.#pipelined().commitAndQuery<Event>(name, position, statements, eventsQuery(position, batchSize), options);
    return { next, held: false, released: false };
  }

  /** Projects a batch; when it throws, finds the events at fault and asks `onError`. */
  #project(batch: readonly Event[]): Promise<{ writes: Writes; skipped: number[]; parked: ParkRequest[] }> {
    const { name, project, onError, store } = this.#config;
    return projectBatch({ name, project, onError, canPark: hasMethods(store, ["replayParked"]) }, batch);
  }
}
