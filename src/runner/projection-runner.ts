// ProjectionRunner: the exactly-once loop (docs/decisions/0007). Load the
// checkpoint, read the events after it, project them, and commit the writes
// with the new checkpoint on condition that it has not moved; with
// eventsQuery, the next read rides in the commit's round trip. Parking,
// budgets, leases and version fences are the run's options.
import { NO_ROWS, rowsSince, type RowUsage } from "../core/row-usage.js";
import type { CommitOptions, LoadResult, OperationOptions, ParkRequest, PipelinedProjectionStore, ProjectionStore, RunLease, VersionFence } from "../core/store.js";
import { CheckpointConflictError, ProjectionVersionError } from "../core/errors.js";
import { checkBatch, projectBatch, type EventErrorDecision, type PositionedEvent } from "./project-batch.js";
import {
  dropLease,
  startRun,
  leasing,
  type LeaseReleasing,
} from "./lease-lifecycle.js";
import {
  endsOnBudget,
  parseRun,
  checkRunOptions,
  parseSource,
  type RunCalls as Calls,
  type RunEnd,
  type RunOptions,
} from "./run-options.js";
import { checkFunction, checkMethods, checkVersion, hasMethods, versionCheckpoint } from "../core/validate.js";
import { type ProjectionRunnerOptions, RUNNER_KEYS, type RunSummary } from "./runner-options.js";
import { rolesOf } from "./version-roles.js";
import { reported, runMetrics, type CheckedMetrics } from "./metrics.js";
import { replayParked } from "./replay.js";

/** A versioned runner's two roles: the live version (checkpoint `name`) and a rebuild (checkpoint `name@version`). */
interface Roles<Event extends PositionedEvent, Writes> {
  readonly version: number;
  readonly live: ProjectionRunner<Event, Writes>;
  readonly building: ProjectionRunner<Event, Writes>;
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

/** The runner's configuration, checked. */
interface Config<Event extends PositionedEvent, Writes> {
  readonly name: string;
  readonly store: ProjectionStore<Writes>;
  /** The store as a pipelining one: set when `eventsQuery` is. */
  readonly pipelined: PipelinedProjectionStore | undefined;
  readonly batchSize: number;
  readonly project: (events: readonly Event[]) => Writes | Promise<Writes>;
  readonly onError: ((error: unknown, event: Event) => EventErrorDecision | Promise<EventErrorDecision>) | undefined;
  readonly readEvents: ((after: number, limit: number) => Promise<readonly Event[]>) | undefined;
  readonly eventsQuery: ((after: number, limit: number) => D1PreparedStatement) | undefined;
  readonly leaseTtlMs: number | undefined;
  readonly metrics: CheckedMetrics | undefined;
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
 *
 * @category Runner
 */
export class ProjectionRunner<Event extends PositionedEvent, Writes = readonly D1PreparedStatement[]> {
  readonly #config: Config<Event, Writes>;
  /** With `version`: the runners of its two roles, picked at each run by the version's state. */
  readonly #roles: Roles<Event, Writes> | undefined;
  /** A role's runner: every commit is fenced by the version's state. */
  #fence: VersionFence | undefined;

  /** Checks the configuration; nothing is sent until {@link ProjectionRunner.run}. */
  constructor(options: ProjectionRunnerOptions<Event, Writes>) {
    const { raw, name, store, pipelined, batchSize, readEvents, eventsQuery, leaseTtlMs, metrics } = parseSource<ProjectionStore<Writes>, PipelinedProjectionStore, Event>(
      options,
      RUNNER_KEYS,
      ["load", "commit"],
      ["commitAndQuery", "loadAndQuery"],
    );
    this.#config = {
      name,
      store,
      pipelined,
      batchSize,
      project: checkFunction("configure", name, raw.project as Config<Event, Writes>["project"] | undefined, "options.project", true),
      onError: checkFunction("configure", name, raw.onError as Config<Event, Writes>["onError"], "options.onError"),
      readEvents,
      eventsQuery,
      leaseTtlMs,
      metrics,
    };
    if (raw.version !== undefined) {
      const version = checkVersion("configure", name, raw.version, "options.version");
      checkMethods("configure", name, store, "options.store", ["versions"], "a store that knows projection versions (versions)");
      const role = (checkpoint: string, state: VersionFence["state"]): ProjectionRunner<Event, Writes> => {
        // The roles report nothing themselves: the versioned runner reports each run once.
        const runner = new ProjectionRunner<Event, Writes>({ ...(options as object), name: checkpoint, version: undefined, metrics: undefined } as ProjectionRunnerOptions<Event, Writes>);
        runner.#fence = { name, version, state };
        return runner;
      };
      this.#roles = { version, live: role(name, "live"), building: role(versionCheckpoint(name, version), "building") };
    }
  }

  /** The projection's checkpoint name. */
  get name(): string {
    return this.#config.name;
  }

  /**
   * Projects events until caught up, `maxBatches` is reached, or another run
   * gets ahead. With a `version`, first reads the version's state (one
   * query): live, it runs under the projection's checkpoint; building, under
   * `name@version`; otherwise it ends at once (`ended: "inactive"`).
   */
  async run(options?: RunOptions): Promise<RunSummary> {
    const { name, store } = this.#config;
    const metrics = runMetrics(name, options, this.#config.metrics);
    if (metrics === undefined) return this.#runVersioned(options);
    // The recorders and the lag reads spend on the run's budget: the caller's, or one made here for the run.
    // Bad options are refused here, before the run and its report.
    const { budget } = checkRunOptions(name, options);
    return reported(metrics, "runner", name, store, budget, () => this.#runVersioned({ ...options, budget }), (summary) => [summary]);
  }

  async #runVersioned(options: RunOptions | undefined): Promise<RunSummary> {
    if (this.#roles === undefined) return this.#run(options);
    const { name } = this.#config;
    const { budget, signal } = parseRun(name, options, undefined);
    const spentBefore = budget.spent;
    const rowsBefore = budget.rows;
    const spent = (): Pick<RunSummary, "queries" | keyof RowUsage> => ({ queries: budget.spent - spentBefore, ...rowsSince(rowsBefore, budget.rows) });
    let role: ProjectionRunner<Event, Writes> | undefined;
    try {
      role = await this.#role({ signal, budget });
    } catch (error) {
      if (!endsOnBudget(error)) throw error;
      return { ...idle(name, "budget"), ...spent() };
    }
    if (role === undefined) return { ...idle(name, "inactive"), ...spent() };
    const summary = await role.#run({ ...options, budget });
    return { ...summary, ...spent() };
  }

  async #run(options: RunOptions | undefined): Promise<RunSummary> {
    const { name, batchSize, leaseTtlMs, eventsQuery } = this.#config;
    const { maxBatches, signal, budget, lease, calls } = parseRun(name, options, leaseTtlMs);
    const spentBefore = budget.spent;
    const rowsBefore = budget.rows;

    const started = await startRun(() => this.#start(calls, lease), calls, spentBefore, lease === undefined ? undefined : () => this.#drop(lease, calls));
    if (started === undefined) {
      // Not even the first round trip fitted in the budget: nothing was read, so from and to are 0.
      return { ...idle(name, "budget"), queries: budget.spent - spentBefore, ...rowsSince(rowsBefore, budget.rows) };
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
      ...rowsSince(rowsBefore, budget.rows),
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
          if (error instanceof ProjectionVersionError && this.#fence !== undefined) {
            // The version was switched or dropped under this run: nothing of the batch was applied.
            end = "switched";
            break run;
          }
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
    if (this.#roles !== undefined) {
      const role = await this.#role(options);
      if (role === undefined) {
        throw new ProjectionVersionError("replay", this.#config.name, this.#roles.version, `version ${this.#roles.version} is neither live nor building: only a live or building version replays`);
      }
      return role.replay(position, options);
    }
    return replayParked(this.#config, this.#fence, position, options);
  }

  /** The runner of this version's role now (one query): live, building, or none. */
  async #role(options: OperationOptions | undefined): Promise<ProjectionRunner<Event, Writes> | undefined> {
    const roles = this.#roles;
    if (roles === undefined) return this;
    const [role] = await rolesOf(this.#config.store, [{ name: this.#config.name, version: roles.version }], options ?? {});
    const state = role?.fence?.state;
    return state === "live" ? roles.live : state === "building" ? roles.building : undefined;
  }

  async #drop(lease: RunLease, calls: Calls): Promise<void> {
    await dropLease(this.#config.store, this.#config.name, lease, calls);
  }

  #leasing(): LeaseReleasing {
    return leasing(this.#config.store, this.#config.name);
  }

  /** The pipelining store; only called on the `eventsQuery` path, where the constructor set it. */
  #pipelined(): PipelinedProjectionStore {
    const { pipelined } = this.#config;
    if (pipelined === undefined) throw new TypeError("unreachable: a pipelined call without eventsQuery");
    return pipelined;
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
    const fence = this.#fence;
    const options: CommitOptions = parked.length === 0 ? { expected, signal, budget, fence } : { expected, signal, budget, fence, parked };
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

/** The summary of a run that read no event: its first query did not fit in the budget, or its version is not live or building. */
function idle(name: string, ended: "budget" | "inactive"): RunSummary {
  return { name, from: 0, to: 0, events: 0, skipped: [], parked: [], batches: 0, conflict: false, caughtUp: false, yielded: false, ended, queries: 0, ...NO_ROWS };
}
