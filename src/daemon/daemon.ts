// A projection daemon (decision 0025): one Durable Object per projection (or
// group) that runs it whenever it is notified, one run at a time, each run in
// an alarm invocation of its own and within its own query budget, chained
// alarm after alarm until caught up, with capped exponential backoff on
// failure. Its state (a pending mark, the attempts, the last run) is kept in
// the object's SQLite, and its alarm in an AlarmSchedule, so that a notify
// survives eviction and the object's own alarm work keeps its alarm too.
// Exactly-once still rests on the runner's conditional commits: a cron or a
// manual run that overlaps a daemon run conflicts or yields, never doubles.
import { CheckpointTypeError } from "../core/errors.js";
import { QueryBudget } from "../core/query-budget.js";
import { checkFunction, checkInteger, checkName, checkOptions, keysOf, typeName } from "../core/validate.js";
import type { RunOptions } from "../runner/run-options.js";
import { AlarmSchedule } from "./alarm-schedule.js";
import { checkMetrics, type RunMetrics } from "../runner/metrics.js";
import type { DaemonOptions, DaemonRun, DaemonStatus, DaemonSwitch, RunOutcome } from "./types.js";

const CREATE_SQL =
  "CREATE TABLE IF NOT EXISTS projection_daemons (" +
  "name TEXT PRIMARY KEY, pending INTEGER NOT NULL DEFAULT 0, paused INTEGER NOT NULL DEFAULT 0, " +
  "attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, runs INTEGER NOT NULL DEFAULT 0, last_run TEXT)";

type DaemonRow = {
  readonly pending: number;
  readonly paused: number;
  readonly attempts: number;
  readonly last_error: string | null;
  readonly runs: number;
  readonly last_run: string | null;
};

const DAEMON_KEYS = keysOf<DaemonOptions>()(["name", "projection", "budget", "maxBatches", "backoff", "autoSwitch", "onRun", "metrics", "schedule"]);
const BACKOFF_KEYS = keysOf<NonNullable<DaemonOptions["backoff"]>>()(["baseMs", "maxMs"]);
const SWITCH_KEYS = keysOf<DaemonSwitch>()(["store", "names", "retire"]);

/** The default budget of one run: D1's 1,000 queries per invocation, less 100 for the object's own. */
export const DEFAULT_DAEMON_BUDGET = 900;

/** Follow-on runs one invocation may make (notifies that arrived during the run before). */
const MAX_FOLLOW_ONS = 16;

/** The budget a follow-on run needs left: its first round trip and a commit. */
const FOLLOW_ON_QUERIES = 10;

/** Ends of a run after which the daemon goes on at once, in the next invocation. */
const GO_ON = new Set(["budget", "maxBatches", "conflict", "switched"]);

/**
 * Runs a projection (a `ProjectionRunner` or a `ProjectionGroup`) inside a
 * SQLite-backed Durable Object, whenever it is notified: the engine of
 * `ProjectionDaemonObject`, for objects of your own that do other work
 * too. Call {@link ProjectionDaemon.alarm} from the object's `alarm()` when
 * the schedule says the daemon's job is due.
 */
export class ProjectionDaemon {
  /** The daemon's name: its row, and its job in the schedule (`daemon:<name>`). */
  readonly name: string;
  readonly #storage: DurableObjectStorage;
  readonly #schedule: AlarmSchedule;
  readonly #projection: DaemonRun;
  readonly #budget: number;
  readonly #maxBatches: number | undefined;
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #autoSwitch: DaemonSwitch | undefined;
  readonly #onRun: ((outcome: RunOutcome) => void | Promise<void>) | undefined;
  readonly #metrics: RunMetrics | undefined;
  /** The run under way in this instance (alarms may be delivered twice at once: by the runtime and by a test). */
  #running: Promise<void> | undefined;

  /** Checks the options; creates the daemon's table once. Sends nothing. */
  constructor(storage: DurableObjectStorage, options: DaemonOptions) {
    const given = checkOptions("configure", undefined, options, "options", DAEMON_KEYS);
    this.name = checkName("configure", given.name, "options.name");
    const projection: unknown = given.projection;
    if (typeof projection !== "object" || projection === null || typeof (projection as { run?: unknown }).run !== "function") {
      throw new CheckpointTypeError("configure", this.name, "options.projection", `must be a ProjectionRunner or ProjectionGroup (an object with run), got ${typeName(projection)}`);
    }
    this.#projection = projection as DaemonRun;
    this.#budget = checkInteger("configure", this.name, given.budget, "options.budget", { min: 1, max: Number.MAX_SAFE_INTEGER, fallback: DEFAULT_DAEMON_BUDGET });
    this.#maxBatches = given.maxBatches === undefined ? undefined : checkInteger("configure", this.name, given.maxBatches, "options.maxBatches", { min: 1, max: Number.MAX_SAFE_INTEGER, fallback: 1 });
    const backoff = checkOptions("configure", this.name, given.backoff, "options.backoff", BACKOFF_KEYS);
    this.#baseMs = checkInteger("configure", this.name, backoff.baseMs, "options.backoff.baseMs", { min: 1, max: 3_600_000, fallback: 1000 });
    this.#maxMs = checkInteger("configure", this.name, backoff.maxMs, "options.backoff.maxMs", { min: this.#baseMs, max: 86_400_000, fallback: 300_000 });
    this.#autoSwitch = parseSwitch(this.name, given.autoSwitch);
    this.#onRun = checkFunction("configure", this.name, given.onRun, "options.onRun");
    // Checked here, before any run; each run then gets it as its own (RunOptions.metrics).
    checkMetrics(this.name, given.metrics, "options.metrics");
    this.#metrics = given.metrics;
    if (given.schedule !== undefined && !(given.schedule instanceof AlarmSchedule)) {
      throw new CheckpointTypeError("configure", this.name, "options.schedule", `must be an AlarmSchedule, got ${typeName(given.schedule)}`);
    }
    this.#storage = storage;
    this.#schedule = given.schedule ?? new AlarmSchedule(storage);
    storage.sql.exec(CREATE_SQL);
    storage.sql.exec("INSERT INTO projection_daemons (name) VALUES (?) ON CONFLICT (name) DO NOTHING", this.name);
  }

  /** The daemon's job in the schedule. */
  get job(): string {
    return `daemon:${this.name}`;
  }

  /**
   * Asks for a run: marks work pending (durably) and, unless the daemon is
   * backing off after a failure or paused, sets its job due now. Notifies
   * during a run are coalesced into one more run after it. `position`, the
   * newest appended position, is optional: a run reads the log whatever it says.
   */
  async notify(position?: number): Promise<void> {
    if (position !== undefined) checkInteger("run", this.name, position, "position", { min: 0, max: Number.MAX_SAFE_INTEGER, fallback: 0 });
    this.#storage.sql.exec("UPDATE projection_daemons SET pending = 1 WHERE name = ?", this.name);
    const row = this.#row();
    if (row.paused === 1 || row.attempts > 0) return; // a failure's backoff is kept: notifies never make it a hot loop
    await this.#schedule.setEarlier(this.job, Date.now());
  }

  /** Runs as soon as possible, even while backing off (the admin's Wake); the attempt count stays. */
  async wake(): Promise<void> {
    this.#storage.sql.exec("UPDATE projection_daemons SET pending = 1 WHERE name = ?", this.name);
    if (this.#row().paused === 1) return;
    await this.#schedule.set(this.job, Date.now());
  }

  /** Stops scheduling runs (a run under way finishes); notifies are still marked pending. */
  async pause(): Promise<void> {
    this.#storage.sql.exec("UPDATE projection_daemons SET paused = 1 WHERE name = ?", this.name);
    await this.#schedule.clear(this.job);
  }

  /** Schedules again after a pause: at once when work is pending. */
  async resume(): Promise<void> {
    this.#storage.sql.exec("UPDATE projection_daemons SET paused = 0 WHERE name = ?", this.name);
    if (this.#row().pending === 1) await this.#schedule.set(this.job, Date.now());
  }

  /** Where the daemon stands: idle, running, backing off or paused; the last run; the next alarm. */
  status(): DaemonStatus {
    const row = this.#row();
    const dueAt = this.#schedule.dueAt(this.job);
    const state = this.#running !== undefined ? "running" : row.paused === 1 ? "paused" : row.attempts > 0 ? "backingOff" : "idle";
    return {
      name: this.name,
      state,
      pending: row.pending === 1,
      attempts: row.attempts,
      lastError: row.last_error ?? undefined,
      nextRunAt: dueAt === undefined ? undefined : new Date(dueAt),
      runs: row.runs,
      lastRun: row.last_run === null ? undefined : (JSON.parse(row.last_run) as DaemonStatus["lastRun"]),
    };
  }

  /**
   * The daemon's part of the object's `alarm()`: runs when its job is due
   * (and was not paused), again in the same invocation for work notified
   * during a run that caught up, then schedules what comes next: at once while
   * the run ended on its budget or `maxBatches` or work was notified
   * meanwhile, after a growing delay when it failed, not at all when it
   * caught up. A failure is recorded, never thrown (the runtime's own alarm
   * retries would run beside the daemon's backoff).
   */
  async alarm(): Promise<void> {
    if (this.#running !== undefined) {
      // Delivered again while a run is under way: the run looks at the pending mark when it ends.
      this.#storage.sql.exec("UPDATE projection_daemons SET pending = 1 WHERE name = ?", this.name);
      await this.#running;
      return;
    }
    const dueAt = this.#schedule.dueAt(this.job);
    if (dueAt === undefined || dueAt > Date.now() || this.#row().paused === 1) {
      await this.#schedule.arm();
      return;
    }
    this.#running = this.#run().finally(() => {
      this.#running = undefined;
    });
    await this.#running;
  }

  /**
   * Runs until nothing is pending, or the invocation's budget is nearly
   * spent: a notify that arrived during a run that caught up is taken by a
   * follow-on run in the same invocation, on what is left of the same
   * budget, rather than by a new alarm (which would add its scheduling and a
   * fresh start to the freshness of every event it carries).
   */
  async #run(): Promise<void> {
    const budget = new QueryBudget(this.#budget);
    for (let follow = 0; ; follow++) {
      const { next, outcome, again } = await this.#once(budget, follow < MAX_FOLLOW_ONS);
      await this.#report(outcome);
      if (again) continue;
      if (this.#row().paused === 1 || next === undefined) await this.#schedule.clear(this.job);
      else await this.#schedule.set(this.job, next);
      return;
    }
  }

  /** One run on `budget`: what it did, when the next is due, and whether to go on in this invocation. */
  async #once(budget: QueryBudget, mayFollow: boolean): Promise<{ next: number | undefined; outcome: RunOutcome; again: boolean }> {
    // The mark is taken before the run: a notify during it marks again, and that means one more run.
    this.#storage.sql.exec("UPDATE projection_daemons SET pending = 0 WHERE name = ?", this.name);
    const startedAt = Date.now();
    const options: RunOptions = { budget, ...(this.#maxBatches === undefined ? {} : { maxBatches: this.#maxBatches }), ...(this.#metrics === undefined ? {} : { metrics: this.#metrics }) };
    try {
      const summary = await this.#projection.run(options);
      const switched = summary.caughtUp && this.#autoSwitch !== undefined ? await switchCaughtUp(this.#autoSwitch) : [];
      const outcome: RunOutcome = { at: new Date(startedAt).toISOString(), ms: Date.now() - startedAt, ended: summary.ended, caughtUp: summary.caughtUp, queries: summary.queries, error: undefined, switched, retryInMs: undefined };
      this.#storage.sql.exec(
        "UPDATE projection_daemons SET attempts = 0, last_error = NULL, runs = runs + 1, last_run = ?2 WHERE name = ?1",
        this.name,
        JSON.stringify(outcome),
      );
      const pending = this.#row().pending === 1;
      const again = mayFollow && summary.caughtUp && pending && budget.remaining >= FOLLOW_ON_QUERIES && this.#row().paused === 0;
      const goOn = GO_ON.has(summary.ended) || switched.length > 0 || pending;
      return { next: goOn ? Date.now() : summary.ended === "yielded" ? Date.now() + this.#baseMs : undefined, outcome, again };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const attempts = this.#row().attempts + 1;
      const retryInMs = Math.min(this.#maxMs, this.#baseMs * 2 ** (attempts - 1));
      const outcome: RunOutcome = { at: new Date(startedAt).toISOString(), ms: Date.now() - startedAt, ended: "failed", caughtUp: false, queries: undefined, error: message, switched: [], retryInMs };
      this.#storage.sql.exec(
        "UPDATE projection_daemons SET attempts = ?2, last_error = ?3, runs = runs + 1, last_run = ?4, pending = 1 WHERE name = ?1",
        this.name,
        attempts,
        message.slice(0, 1000),
        JSON.stringify(outcome),
      );
      return { next: Date.now() + retryInMs, outcome, again: false };
    }
  }

  async #report(outcome: RunOutcome): Promise<void> {
    if (this.#onRun === undefined) return;
    try {
      await this.#onRun(outcome);
    } catch {
      // Metrics never stop a daemon.
    }
  }

  #row(): DaemonRow {
    const [row] = this.#storage.sql.exec<DaemonRow>("SELECT pending, paused, attempts, last_error, runs, last_run FROM projection_daemons WHERE name = ?", this.name).toArray();
    return row ?? { pending: 0, paused: 0, attempts: 0, last_error: null, runs: 0, last_run: null };
  }
}

function parseSwitch(name: string, value: unknown): DaemonSwitch | undefined {
  if (value === undefined) return undefined;
  const given = checkOptions<Partial<DaemonSwitch>>("configure", name, value as Partial<DaemonSwitch>, "options.autoSwitch", SWITCH_KEYS);
  const store: unknown = given.store;
  if (typeof store !== "object" || store === null || typeof (store as { versions?: unknown }).versions !== "function" || typeof (store as { switchVersion?: unknown }).switchVersion !== "function" || typeof (store as { status?: unknown }).status !== "function") {
    throw new CheckpointTypeError("configure", name, "options.autoSwitch.store", "must be a store with versions, status and switchVersion (a D1 or Durable Object store)");
  }
  if (!Array.isArray(given.names) || given.names.length === 0) throw new CheckpointTypeError("configure", name, "options.autoSwitch.names", "must be a non-empty array of projection names");
  const names = (given.names as unknown[]).map((projection, index) => checkName("configure", projection, `options.autoSwitch.names[${String(index)}]`));
  const retire: unknown = given.retire;
  if (retire !== undefined && retire !== "keep" && retire !== "drop") {
    throw new CheckpointTypeError("configure", name, "options.autoSwitch.retire", `must be "keep" or "drop", got ${JSON.stringify(retire)}`);
  }
  return { store: store as DaemonSwitch["store"], names, retire };
}

/** Switches every building version that has caught up with its live one; the switches it made. */
async function switchCaughtUp({ store, names, retire }: DaemonSwitch): Promise<string[]> {
  const switched: string[] = [];
  for (const name of names) {
    const building = (await store.versions(name)).find((version) => version.state === "building");
    if (building === undefined) continue;
    const [live, rebuild] = await Promise.all([store.status(name), store.status(building.checkpoint)]);
    if (rebuild.position < live.position) continue;
    await store.switchVersion(name, building.version, retire === undefined ? undefined : { retire });
    switched.push(`${name}@${String(building.version)}`);
  }
  return switched;
}
