// Several projections over one event source in one invocation: each batch of
// events is read once, every projection projects the events after its own
// checkpoint, and all of them commit together in one transaction with their
// own conditional checkpoints (and, with eventsQuery, the next read riding
// along). A shared batch that fails is committed again projection by
// projection, so one projection's conflict or failing statement never
// blocks or corrupts another.
import { rowsSince } from "../core/row-usage.js";
import { reported, runMetrics, type CheckedMetrics, type RunResult } from "./metrics.js";
import type { GroupProjectionStore, LoadResult, PipelinedGroupStore, RunLease } from "../core/store.js";
import { CheckpointConflictError, D1OperationError, messageOf, ProjectionVersionError } from "../core/errors.js";
import { checkBatch, projectBatch, ProjectionError, type PositionedEvent } from "./project-batch.js";
import { GROUP_KEYS, type GroupProjection, type GroupRunSummary, ProjectionGroupError, type ProjectionGroupOptions } from "./group-options.js";
import { QueryBudgetError } from "../core/query-budget.js";
import { dropLease, leasing, startRun, type LeaseReleasing } from "./lease-lifecycle.js";
import { checkRunOptions, endsOnBudget, parseRun, parseSource, type RunCalls, type RunEnd, type RunOptions } from "./run-options.js";
import { advance, checkProjections, commitOf, fail, memberOf, memberSummary, stoppedEnd, type Member, type Part } from "./group-members.js";
import { checkMethods, hasMethods } from "../core/validate.js";
import { rolesOf, type Role } from "./version-roles.js";

interface Config<Event extends PositionedEvent, Writes> {
  readonly name: string;
  readonly store: GroupProjectionStore<Writes>;
  /** The store as a pipelining one: set when `eventsQuery` is. */
  readonly pipelined: PipelinedGroupStore | undefined;
  readonly projections: readonly GroupProjection<Event, Writes>[];
  readonly batchSize: number;
  readonly readEvents: ((after: number, limit: number) => Promise<readonly Event[]>) | undefined;
  readonly eventsQuery: ((after: number, limit: number) => D1PreparedStatement) | undefined;
  readonly leaseTtlMs: number | undefined;
  readonly metrics: CheckedMetrics | undefined;
}

/**
 * Runs several projections over one event source: one read per batch for all
 * of them, and one commit (one transaction) of every projection's writes and
 * conditional checkpoint, so N projections cost one round trip per batch, not
 * N. A projection that is behind catches up alone until it reaches the
 * others, then joins them. When a shared commit fails (a conflict, a failing
 * statement), the batch is committed again projection by projection: each
 * keeps its exactly-once guarantee, its parking and honest outcomes, and one
 * projection's failure does not stop the others. The run resolves when every
 * projection is done, and rejects with {@link ProjectionGroupError} if any failed.
 *
 * @example
 * ```ts
 * const group = new ProjectionGroup<LedgerEvent>({
 *   name: "ledger-projections",
 *   store: new D1CheckpointStore(env.DB),
 *   batchSize: 1000,
 *   eventsQuery: (after, limit) =>
 *     env.DB.prepare("SELECT * FROM events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
 *   projections: [
 *     { name: "balances", project: (events) => balanceStatements(env.DB, events) },
 *     { name: "daily-totals", project: (events) => dailyTotalStatements(env.DB, events) },
 *   ],
 * });
 * const summary = await group.run({ budget: 900 });
 * ```
 *
 * @category Group
 */
export class ProjectionGroup<Event extends PositionedEvent, Writes = readonly D1PreparedStatement[]> {
  readonly #config: Config<Event, Writes>;

  /** Checks the configuration; nothing is sent until {@link ProjectionGroup.run}. */
  constructor(options: ProjectionGroupOptions<Event, Writes>) {
    const { raw, name, store, pipelined, batchSize, readEvents, eventsQuery, leaseTtlMs, metrics } = parseSource<GroupProjectionStore<Writes>, PipelinedGroupStore, Event>(
      options,
      GROUP_KEYS,
      ["loadMany", "commitMany", "commit"],
      ["loadManyAndQuery", "commitManyAndQuery"],
    );
    this.#config = {
      name,
      store,
      pipelined,
      projections: checkProjections<Event, Writes>(name, raw.projections),
      batchSize,
      readEvents,
      eventsQuery,
      leaseTtlMs,
      metrics,
    };
    if (this.#config.projections.some((projection) => projection.version !== undefined)) {
      checkMethods("configure", name, store, "options.store", ["versions"], "a store that knows projection versions (versions)");
    }
  }

  /** The group's name. */
  get name(): string {
    return this.#config.name;
  }

  /**
   * Projects every projection until caught up, `maxBatches` is reached or the
   * query budget would be exceeded. Resolves with one summary per projection;
   * rejects with {@link ProjectionGroupError} (holding that summary) when a
   * projection failed, after the others went as far as they could.
   */
  async run(options?: RunOptions): Promise<GroupRunSummary> {
    const { name, store } = this.#config;
    const metrics = runMetrics(name, options, this.#config.metrics);
    if (metrics === undefined) return this.#run(options);
    // The recorders and the lag reads spend on the run's budget: the caller's, or one made here for the run.
    // Bad options are refused here, before the run and its report.
    const { budget } = checkRunOptions(name, options);
    // A group whose projections failed rejects with its summary: reported as it is.
    const failed = (error: unknown): RunResult | undefined => (error instanceof ProjectionGroupError ? { summary: error.summary, parts: error.summary.projections } : undefined);
    return reported(metrics, "group", name, store, budget, () => this.#run({ ...options, budget }), (summary) => summary.projections, failed);
  }

  async #run(options: RunOptions | undefined): Promise<GroupRunSummary> {
    const { name, batchSize, eventsQuery } = this.#config;
    const { maxBatches, signal, budget, lease, calls } = parseRun(name, options, this.#config.leaseTtlMs);
    const spentBefore = budget.spent;
    const rowsBefore = budget.rows;
    const { projections } = this.#config;
    let roles: Role[] = projections.map(() => undefined);
    const started = await startRun(
      async () => {
        // Each versioned projection's role this run (one query per projection), then one load of every checkpoint that runs.
        roles = await rolesOf(this.#config.store, projections, { signal, budget: calls.budget });
        const names = roles.flatMap((role) => (role === undefined ? [] : [role.checkpoint]));
        return names.length === 0 ? { checkpoints: [], events: undefined, leased: true } : this.#start(calls, lease, names);
      },
      calls,
      spentBefore,
      lease === undefined ? undefined : () => this.#drop(lease, calls),
    );
    // Not even the first round trip fitted in the budget: nothing was read, so every projection's from and to are 0.
    const start = started ?? { checkpoints: [], events: undefined, leased: true };
    let loaded = 0;
    const members = projections.map((projection, index): Member<Event, Writes> => {
      const role = started === undefined ? { checkpoint: projection.name, fence: undefined } : roles[index];
      const checkpoint = role === undefined ? undefined : start.checkpoints[loaded++];
      return memberOf(projection, role, checkpoint ?? { position: 0, found: false });
    });
    let batches = 0;
    let end: RunEnd | "failed" = "maxBatches";
    const finish = (): GroupRunSummary => {
      const summary: GroupRunSummary = {
        name,
        projections: members.map((member) => memberSummary(member, end, budget.rowsOf(member.checkpoint))),
        batches,
        queries: budget.spent - spentBefore,
        ...rowsSince(rowsBefore, budget.rows),
        ended: end,
        caughtUp: end === "caughtUp",
      };
      if (members.some((member) => member.state === "failed")) throw new ProjectionGroupError(summary);
      return summary;
    };
    if (started === undefined || !start.leased || members.every((member) => member.state === "inactive")) {
      end = started === undefined ? "budget" : start.leased ? "inactive" : "yielded";
      calls.done();
      return finish();
    }

    let released = lease === undefined;
    let reloads = 0;
    let batch: readonly Event[] | undefined = start.events;
    try {
      run: while (batches < maxBatches) {
        signal?.throwIfAborted();
        const active = members.filter((member) => member.state === "active");
        if (active.length === 0) {
          end = stoppedEnd(members);
          break;
        }
        // With eventsQuery a read loads the active checkpoints again: the lowest is taken after it.
        batch ??= await this.#read(active, Math.min(...active.map((member) => member.position)), calls);
        const lowest = Math.min(...active.map((member) => member.position));
        checkBatch(name, lowest, batch, batchSize);
        const last = batch.at(-1);
        if (last === undefined) {
          if (lease !== undefined && eventsQuery !== undefined) {
            // Nothing left: let go of the lease, unless another run noted work meanwhile (then go on with it).
            const { held, rows } = await this.#leasing().releaseLease<Event>(name, lease, eventsQuery(lowest, batchSize), { signal, budget: calls.budget });
            released = !held;
            if (held) {
              batch = rows;
              continue;
            }
          }
          end = "caughtUp";
          break;
        }
        const parts = await this.#project(active, batch, last.position);
        const final = batch.length < batchSize;
        const more = !final && batches + 1 < maxBatches;
        batch = undefined;
        if (parts.length > 0) {
          const shared = await this.#commitShared(parts, last.position, more, calls);
          if (shared.committed) batch = shared.next;
          else {
            const { conflicts, committed } = await this.#commitEach(parts, last.position, calls);
            // A leased group answers for the work other runs noted pending: it reloads and goes on.
            if (conflicts > 0 && lease !== undefined && reloads < maxBatches) {
              reloads += 1;
              if (committed > 0) batches += 1;
              for (const member of members) if (member.state === "conflict") member.state = "active";
              continue;
            }
          }
          batches += 1;
        }
        const running = members.filter((member) => member.state === "active");
        if (final && running.every((member) => member.position >= last.position)) {
          if (lease !== undefined && eventsQuery !== undefined && running.length > 0) {
            // The next read starts after the lowest projection still running (one may stand beyond this batch).
            const after = Math.min(...running.map((member) => member.position));
            const { held, rows } = await this.#leasing().releaseLease<Event>(name, lease, eventsQuery(after, batchSize), { signal, budget: calls.budget });
            released = !held;
            if (held) {
              batch = rows;
              continue run;
            }
          }
          end = "caughtUp";
          break;
        }
      }
    } catch (error) {
      if (!endsOnBudget(error)) throw error;
      end = "budget";
    } finally {
      if (!released && lease !== undefined) await this.#drop(lease, calls);
      calls.done();
    }
    // No projection left running: the run ended on their conflicts or failures, whatever it saw of the log.
    if (!members.some((member) => member.state === "active") && (end === "caughtUp" || end === "maxBatches")) end = stoppedEnd(members);
    return finish();
  }

  /** The checkpoints of `names`, and with `eventsQuery` the first events, and whether the lease is this run's. */
  async #start(
    { signal, budget }: RunCalls,
    lease: RunLease | undefined,
    names: readonly string[],
  ): Promise<{ checkpoints: LoadResult[]; events: readonly Event[] | undefined; leased: boolean }> {
    const { name, store, eventsQuery, batchSize } = this.#config;
    if (eventsQuery === undefined) return { checkpoints: await store.loadMany(names, { signal, budget }), events: undefined, leased: true };
    const { checkpoints, rows, leased } = await this.#pipelined().loadManyAndQuery<Event>(names, (after) => eventsQuery(after, batchSize), {
      signal,
      budget,
      lease: lease === undefined ? undefined : { name, ...lease },
    });
    return { checkpoints, events: rows, leased };
  }

  /**
   * Reads the next events after `lowest`. With `eventsQuery` the active
   * projections' checkpoints are loaded again with them (their positions are
   * updated), and the events are those after the lowest of them.
   */
  async #read(active: readonly Member<Event, Writes>[], lowest: number, calls: RunCalls): Promise<readonly Event[]> {
    const { name, readEvents, batchSize } = this.#config;
    if (readEvents !== undefined) {
      calls.budget.spend(1, "run", name); // readEvents counts as one query
      return readEvents(lowest, batchSize);
    }
    const { checkpoints, events } = await this.#start(calls, undefined, active.map((member) => member.checkpoint));
    active.forEach((member, index) => {
      const checkpoint = checkpoints[index];
      if (checkpoint !== undefined) {
        member.position = checkpoint.position;
        member.expected = checkpoint.found ? checkpoint.position : null;
      }
    });
    return events ?? [];
  }

  /** Every active projection behind `last` projects the events after its own checkpoint; one that stops is failed. */
  async #project(active: readonly Member<Event, Writes>[], batch: readonly Event[], last: number): Promise<Part<Event, Writes>[]> {
    const canPark = hasMethods(this.#config.store, ["replayParked"]);
    const parts: Part<Event, Writes>[] = [];
    for (const member of active) {
      if (member.position >= last) continue; // ahead of this batch: it waits for the others
      const events = batch.filter((event) => event.position > member.position);
      const { project, onError } = member.projection;
      const name = member.checkpoint;
      try {
        parts.push({ member, projected: await projectBatch({ name, project, onError, canPark }, events), count: events.length });
      } catch (error) {
        // A ProjectionError (project stopped), or onError itself throwing: this projection stops, the others go on.
        if (!(error instanceof Error)) throw error;
        fail(member, error instanceof ProjectionError ? error : new ProjectionError(name, undefined, `onError failed: ${messageOf(error)}`, { cause: error }));
      }
    }
    return parts;
  }

  /** Commits every part in one transaction (with `more`, the next read rides along); `committed: false` when it failed and applied nothing. */
  async #commitShared(
    parts: readonly Part<Event, Writes>[],
    last: number,
    more: boolean,
    { signal, budget }: RunCalls,
  ): Promise<{ committed: boolean; next: readonly Event[] | undefined }> {
    const { store, eventsQuery, batchSize } = this.#config;
    const commits = parts.map(({ member, projected }) => commitOf(member, last, projected));
    try {
      const next =
        eventsQuery !== undefined && more
          ? await this.#pipelined().commitManyAndQuery<Event>(commits.map((commit) => ({ ...commit, writes: commit.writes as readonly D1PreparedStatement[] })), eventsQuery(last, batchSize), { signal, budget })
          : (await store.commitMany(commits, { signal, budget }), undefined);
      for (const part of parts) advance(part, last);
      return { committed: true, next };
    } catch (error) {
      // A failed shared commit applied nothing (a conflict, a statement D1 rejected, a write that threw inside the
      // Durable Object's transaction, writes the store refused), so it is committed again projection by projection.
      // What cannot be attributed ends the run: an unknown outcome, an abort, the query budget.
      if ((error instanceof D1OperationError && (error.outcomeUnknown || error.aborted)) || error instanceof QueryBudgetError || error === signal?.reason) throw error;
      return { committed: false, next: undefined };
    }
  }

  /** Commits the parts one by one after a shared commit failed: each projection's own conflict or failure stays its own. Returns the conflicts. */
  async #commitEach(parts: readonly Part<Event, Writes>[], last: number, { signal, budget }: RunCalls): Promise<{ conflicts: number; committed: number }> {
    let conflicts = 0;
    let committed = 0;
    for (const part of parts) {
      const { name, writes, expected, parked, fence } = commitOf(part.member, last, part.projected);
      try {
        await this.#config.store.commit(name, last, writes, parked === undefined ? { expected, signal, budget, fence } : { expected, signal, budget, fence, parked });
        advance(part, last);
        committed += 1;
      } catch (error) {
        // The budget and an abort end the run; an unknown outcome is this projection's own, reported with it.
        if (endsOnBudget(error) || (signal?.aborted === true && (error === signal.reason || (error instanceof D1OperationError && error.aborted)))) throw error;
        if (error instanceof ProjectionVersionError && part.member.fence !== undefined) {
          // Its version was switched or dropped under the run: it stops, the others go on.
          part.member.state = "switched";
        } else if (error instanceof CheckpointConflictError && error.checkpoint === name) {
          part.member.state = "conflict";
          conflicts += 1;
        } else if (error instanceof Error) fail(part.member, error);
        else throw error;
      }
    }
    return { conflicts, committed };
  }

  async #drop(lease: RunLease, calls: RunCalls): Promise<void> {
    await dropLease(this.#config.store, this.#config.name, lease, calls);
  }

  #leasing(): LeaseReleasing {
    return leasing(this.#config.store, this.#config.name);
  }

  /** The pipelining store; only called on the `eventsQuery` path, where the constructor set it. */
  #pipelined(): PipelinedGroupStore {
    const { pipelined } = this.#config;
    if (pipelined === undefined) throw new TypeError("unreachable: a pipelined call without eventsQuery");
    return pipelined;
  }
}
