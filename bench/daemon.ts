// The projection daemon (src/daemon.ts) with every D1 call delayed, as on
// production D1 (the wrapper technique of bench/latency.ts, inside the daemon's
// object too: bench/daemon-object.ts):
// - freshness: appenders append one event per request from many clients at once;
//   per event, the time from its commit to the commit that put it in the read
//   model, both by D1's clock (the event row's recorded_at and the read-model
//   row's seen_at are SQL defaults), for the daemon (notify() not awaited),
//   for a leased runner started per append (ctx.waitUntil style), against one
//   appender awaiting a runner per append; a cron's is computed from its period;
// - catch-up: many events from zero, set-based writes, the daemon chaining runs
//   within a query budget per invocation, against one uninterrupted run;
// - rebuild: the same events into version 2 beside the live version 1 (one
//   group of both, the daemon switching it live by itself), against one
//   uninterrupted run and the switch.
// The daemon's alarms fire by themselves (the runtime's, not driven by the bench).
import { NOW_MS_SQL } from "../src/sql/checkpoints.js";
import { D1CheckpointStore } from "../src/index.js";
import type { DaemonStatus } from "../src/daemon.js";
import { count, median, ratio, type BenchTable } from "./harness.js";
import {
  CATCH_UP_NAME,
  catchUpRunner,
  d1Now,
  FRESH_EVENTS,
  FRESH_MODEL,
  FRESH_NAME,
  freshRunner,
  LOG,
  REBUILD_GROUP,
  REBUILD_NAME,
  rebuildGroup,
  TOTALS,
  TOTALS_V2,
  withLatency,
  type BenchDaemon,
  type BenchDaemonMeter,
  type Sent,
} from "./daemon-object.js";

/** How big and how often. */
export interface DaemonScale {
  /** Clients appending at once, and appends each, in the freshness suite. */
  readonly appenders: number;
  readonly appendsEach: number;
  /** Appends one at a time to an idle daemon (its floor). */
  readonly idleAppends: number;
  /** Freshness rounds (every variant once per round, in rotating order; the samples are pooled). */
  readonly rounds: number;
  /** Events of the catch-up and the rebuild, and their batch size. */
  readonly events: number;
  readonly batchSize: number;
  /** The daemon's budget: queries per run, each run an invocation of its own. */
  readonly budget: number;
  /** Runs of each catch-up and rebuild variant (interleaved). */
  readonly catchUpRuns: number;
  /** Milliseconds the latency wrapper waits before each D1 call. */
  readonly latencyMs: number;
}

/** What `npm run bench` measures. */
export const DAEMON_FULL: DaemonScale = {
  appenders: 16,
  appendsEach: 50,
  idleAppends: 40,
  rounds: 3,
  events: 1_000_000,
  batchSize: 1000,
  budget: 900,
  catchUpRuns: 3,
  latencyMs: 10,
};

/** The smoke run inside `npm test`: every code path (the catch-up chains 4 runs), tiny sizes. */
export const DAEMON_SMOKE: DaemonScale = {
  appenders: 3,
  appendsEach: 3,
  idleAppends: 2,
  rounds: 1,
  events: 3000,
  batchSize: 100,
  budget: 30,
  catchUpRuns: 1,
  latencyMs: 1,
};

/** A cron's period. */
const CRON_MS = 60_000;
const FRESH_BATCH = 100;

type Daemons = DurableObjectNamespace<BenchDaemon>;
type Stub = DurableObjectStub<BenchDaemon>;

let objects = 0;
/** A daemon object of its own: a fresh object per measurement, configured by its name. */
function daemonOf(daemons: Daemons, config: string): Stub {
  objects += 1;
  return daemons.get(daemons.idFromName(`${config};n=${String(objects)}-${String(Date.now())}`));
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until the daemon has nothing under way and nothing scheduled (its alarms fire by themselves). */
async function idle(stub: Stub, most = 900_000): Promise<DaemonStatus> {
  const until = Date.now() + most;
  for (;;) {
    const status: DaemonStatus = await stub.status();
    if (status.state === "backingOff") throw new Error(`the bench daemon failed: ${String(status.lastError)}`);
    if (status.state === "idle" && status.nextRunAt === undefined) return status;
    if (Date.now() > until) throw new Error(`the bench daemon is still busy after ${String(most)} ms: ${JSON.stringify(status)}`);
    await sleep(20);
  }
}

/** The nearest-rank percentile of a non-empty list. */
function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
}

/** Why the daemon's budget is what it is. */
function budgetWhy(scale: DaemonScale): string {
  return scale.budget === 900 ? "the default: D1's 1,000 queries per invocation less 100 for the object's own" : "a small budget, so that the runs chain at this size";
}

/** `3 rounds`, `1 round` */
function plural(n: number, word: string): string {
  return `${count(n)} ${word}${n === 1 ? "" : "s"}`;
}

function met(ok: boolean): string {
  return ok ? "met" : "not met";
}

/** `12.3` */
function tenths(value: number): string {
  return value.toLocaleString("en-US", { maximumFractionDigits: 1 });
}

/** `1,234 (1,100–1,300)` of a list of ms */
function spread(values: readonly number[]): string {
  return `${count(median(values))} (${count(Math.min(...values))}–${count(Math.max(...values))})`;
}

// ---------------------------------------------------------------- freshness

async function resetFresh(db: D1Database): Promise<void> {
  await db.batch([
    db.prepare(`DROP TABLE IF EXISTS ${FRESH_EVENTS}`),
    db.prepare(`DROP TABLE IF EXISTS ${FRESH_MODEL}`),
    db.prepare(`CREATE TABLE ${FRESH_EVENTS} (position INTEGER PRIMARY KEY, k TEXT NOT NULL, recorded_at INTEGER NOT NULL DEFAULT (${NOW_MS_SQL}))`),
    db.prepare(`CREATE TABLE ${FRESH_MODEL} (position INTEGER PRIMARY KEY, seen_at INTEGER NOT NULL DEFAULT (${NOW_MS_SQL}))`),
    db.prepare("DELETE FROM checkpoints WHERE name = ?1").bind(FRESH_NAME),
    db.prepare("DELETE FROM projection_leases WHERE name = ?1").bind(FRESH_NAME),
  ]);
}

/** One freshness measurement: the per-event delays (ms, D1's clock), what the projection sent, and the events. */
interface Freshness {
  readonly delays: number[];
  readonly sent: Sent;
  readonly events: number;
  /** The daemon's runs that applied events: how long each took, the gap before the next began (ms, the object's clock), and the events each applied. */
  readonly runs?: { readonly ms: number[]; readonly gaps: number[]; readonly events: number[] };
}

/** Per event, seen_at − recorded_at; throws unless every event is in the read model exactly once. */
async function delaysOf(db: D1Database, label: string): Promise<{ delays: number[]; events: number }> {
  const { results } = await db
    .prepare(`SELECT e.position AS position, m.seen_at - e.recorded_at AS delay FROM ${FRESH_EVENTS} e LEFT JOIN ${FRESH_MODEL} m USING (position) ORDER BY e.position`)
    .all<{ position: number; delay: number | null }>();
  const model = await db.prepare(`SELECT COUNT(*) AS n FROM ${FRESH_MODEL}`).first<{ n: number }>();
  const missing = results.filter((row) => row.delay === null).length;
  // The read model's primary key makes a second apply of an event fail its commit.
  if (missing > 0 || model?.n !== results.length) throw new Error(`${label}: ${String(missing)} events missing from the read model, ${String(model?.n)} rows for ${String(results.length)} events`);
  return { delays: results.map((row) => row.delay ?? 0), events: results.length };
}

type FreshVariant = "sequential" | "daemon" | "waitUntil";

const FRESH_LABELS: Readonly<Record<FreshVariant, string>> = {
  sequential: "1 appender, each append's run awaited (one sequential runner, no lease)",
  daemon: "projection daemon: notify() after each append, not awaited",
  waitUntil: "a runner with lease: true started per append, not awaited (ctx.waitUntil)",
};

/** Appends events from `appenders` clients, `each` apiece, every append through the latency wrapper; `after` is what an append then starts. */
async function appendFrom(db: D1Database, scale: DaemonScale, appenders: number, each: number, after: (position: number) => Promise<void>): Promise<void> {
  const appends = withLatency(db, scale.latencyMs);
  const insert = appends.db.prepare(`INSERT INTO ${FRESH_EVENTS} (k) VALUES (?1) RETURNING position`);
  const client = async (c: number): Promise<void> => {
    for (let i = 0; i < each; i++) {
      const row = await insert.bind(`k${String(c)}`).first<{ position: number }>();
      if (row === null) throw new Error("an append returned no position");
      await after(row.position);
    }
  };
  await Promise.all(Array.from({ length: appenders }, (_, c) => client(c)));
}

async function freshRound(db: D1Database, daemons: Daemons, scale: DaemonScale, variant: FreshVariant): Promise<Freshness> {
  await resetFresh(db);
  const appends = scale.appenders * scale.appendsEach;
  if (variant === "daemon") {
    const stub = daemonOf(daemons, `mode=fresh;latency=${String(scale.latencyMs)};batch=${String(FRESH_BATCH)};budget=900`);
    await stub.notify(); // the object and its runner have run before, as a long-lived daemon's have
    await idle(stub);
    await stub.clearMeter();
    const background: Promise<void>[] = [];
    await appendFrom(db, scale, scale.appenders, scale.appendsEach, (position) => {
      background.push(stub.notify(position)); // in ctx.waitUntil: the request does not wait for it
      return Promise.resolve();
    });
    await Promise.all(background);
    await idle(stub);
    const meter: BenchDaemonMeter = await stub.meter();
    const failed = meter.runs.filter((run) => run.ended === "failed" || (run.queries ?? 0) > 900);
    if (failed.length > 0) throw new Error(`the bench daemon's runs failed or went over budget: ${JSON.stringify(failed)}`);
    const starts = meter.runs.map((run) => Date.parse(run.at));
    const gaps = meter.runs.slice(1).map((run, i) => Date.parse(run.at) - ((starts[i] ?? 0) + (meter.runs[i]?.ms ?? 0)));
    const applied = meter.events.filter((events) => events > 0);
    const runs = { ms: meter.runs.filter((_run, i) => (meter.events[i] ?? 0) > 0).map((run) => run.ms), gaps, events: applied };
    return { ...(await delaysOf(db, FRESH_LABELS[variant])), sent: { queries: meter.queries, roundTrips: meter.roundTrips }, runs };
  }
  const slow = withLatency(db, scale.latencyMs);
  const lease = variant === "waitUntil";
  await freshRunner(slow.db, FRESH_BATCH, lease).run(); // the isolate has seen the projection before
  slow.clear();
  if (variant === "sequential") {
    await appendFrom(db, scale, 1, appends, async () => {
      await freshRunner(slow.db, FRESH_BATCH, false).run();
    });
  } else {
    const background: Promise<unknown>[] = [];
    await appendFrom(db, scale, scale.appenders, scale.appendsEach, (): Promise<void> => {
      background.push(freshRunner(slow.db, FRESH_BATCH, true).run()); // a fresh runner per request, as in the example
      return Promise.resolve();
    });
    await Promise.all(background);
    await freshRunner(slow.db, FRESH_BATCH, true).run(); // whatever the race left: a catch-up, counted too
  }
  return { ...(await delaysOf(db, FRESH_LABELS[variant])), sent: slow.sent() };
}

/** The idle daemon's floor: appends one at a time, each waited for; where the time goes (medians, ms). */
async function idleFloor(db: D1Database, daemons: Daemons, scale: DaemonScale): Promise<{ freshness: Freshness; arrive: number; alarm: number; run: number }> {
  await resetFresh(db);
  const stub = daemonOf(daemons, `mode=fresh;latency=${String(scale.latencyMs)};batch=${String(FRESH_BATCH)};budget=900`);
  await stub.notify();
  await idle(stub);
  await stub.clearMeter();
  const arrive: number[] = [];
  const alarm: number[] = [];
  const run: number[] = [];
  await appendFrom(db, scale, 1, scale.idleAppends, async (position) => {
    const notified = stub.notify(position);
    await notified;
    await idle(stub);
    const meter = await stub.meter();
    const row = await db
      .prepare(`SELECT e.recorded_at AS recorded, m.seen_at AS seen FROM ${FRESH_EVENTS} e JOIN ${FRESH_MODEL} m USING (position) WHERE position = ?1`)
      .bind(position)
      .first<{ recorded: number; seen: number }>();
    const notifiedAt = meter.notifiedAt.at(-1);
    const alarmedAt = meter.alarmedAt.at(-1);
    if (row === null || notifiedAt === undefined || alarmedAt === undefined) throw new Error(`position ${String(position)}: not projected, or no notify or alarm seen`);
    arrive.push(notifiedAt - row.recorded);
    alarm.push(alarmedAt - notifiedAt);
    run.push(row.seen - alarmedAt);
  });
  const meter = await stub.meter();
  return {
    freshness: { ...(await delaysOf(db, "idle daemon")), sent: { queries: meter.queries, roundTrips: meter.roundTrips } },
    arrive: median(arrive),
    alarm: median(alarm),
    run: median(run),
  };
}

/**
 * Freshness: per appended event, the time from its commit until the read model
 * includes it (D1's clock), p50 and p99, and the queries the projection sends
 * per 1,000 events, for the daemon, a leased runner per append, a cron
 * (computed), against one sequential runner.
 */
export async function daemonFreshness(db: D1Database, daemons: Daemons, scale: DaemonScale): Promise<BenchTable> {
  const order: readonly FreshVariant[] = ["daemon", "waitUntil", "sequential"];
  const pooled = new Map<FreshVariant, Freshness[]>(order.map((variant) => [variant, []]));
  for (let round = 0; round < scale.rounds; round++) {
    for (let k = 0; k < order.length; k++) {
      const variant = order[(round + k) % order.length] as FreshVariant;
      pooled.get(variant)?.push(await freshRound(db, daemons, scale, variant));
    }
  }
  const floor = await idleFloor(db, daemons, scale);
  // A cron's queries: one run over every event appended since its last run (the appends here take seconds, far less than its minute).
  await resetFresh(db);
  const appends = scale.appenders * scale.appendsEach;
  await db.prepare(`INSERT INTO ${FRESH_EVENTS} (k) SELECT 'k' || (value % ${String(scale.appenders)}) FROM json_each(?1)`).bind(JSON.stringify(Array.from({ length: appends }, (_, i) => i))).run();
  const cronDb = withLatency(db, scale.latencyMs);
  await freshRunner(cronDb.db, FRESH_BATCH, true).run();
  const cron: Freshness = { ...(await delaysOf(db, "cron")), sent: cronDb.sent() };
  await cleanUpFresh(db);

  const summary = (runs: readonly Freshness[]): { delays: number[]; queries: number; roundTrips: number; events: number } => ({
    delays: runs.flatMap((run) => run.delays),
    queries: median(runs.map((run) => (run.sent.queries * 1000) / run.events)),
    roundTrips: median(runs.map((run) => (run.sent.roundTrips * 1000) / run.events)),
    events: runs.reduce((n, run) => n + run.events, 0),
  });
  const sequential = summary(pooled.get("sequential") ?? []);
  const daemon = summary(pooled.get("daemon") ?? []);
  const waitUntil = summary(pooled.get("waitUntil") ?? []);
  const idleDaemon = summary([floor.freshness]);
  const cronCost = summary([cron]);
  const trips = (ms: number): string => tenths(ms / scale.latencyMs);
  const row = (label: string, appenders: string, s: { delays: number[]; queries: number; roundTrips: number; events: number }): (string | number)[] => {
    const p50 = percentile(s.delays, 50);
    const p99 = percentile(s.delays, 99);
    return [label, appenders, count(s.events), count(p50), count(p99), trips(p50), trips(p99), count(s.queries), count(s.roundTrips), ratio(s.queries / sequential.queries)];
  };
  const daemonRuns = (pooled.get("daemon") ?? []).flatMap((round) => (round.runs === undefined ? [] : [round.runs]));
  const runMs = daemonRuns.flatMap((runs) => runs.ms);
  const gaps = daemonRuns.flatMap((runs) => runs.gaps);
  const perRun = daemonRuns.flatMap((runs) => runs.events);
  const underLoad =
    runMs.length === 0
      ? ""
      : `Under the appenders the daemon's runs that applied events (${count(median(daemonRuns.map((runs) => runs.events.length)))} a round, median) applied a median ${count(median(perRun))} events each (most ${count(Math.max(...perRun))}), ` +
        `took a median ${count(median(runMs))} ms (p99 ${count(percentile(runMs, 99))}), and each next run began a median ${count(median(gaps))} ms (p99 ${count(percentile(gaps, 99))}) after the one before ended (RunOutcome's at and ms, the object's clock). `;
  const daemonP50 = percentile(daemon.delays, 50) / scale.latencyMs;
  const daemonP99 = percentile(daemon.delays, 99) / scale.latencyMs;
  const daemonRatio = daemon.queries / sequential.queries;
  const cronP50 = CRON_MS * 0.5;
  const cronP99 = CRON_MS * 0.99;
  const many = `${String(scale.appenders)} × ${String(scale.appendsEach)}`;
  return {
    title: "Projection daemon: freshness",
    note:
      `${String(scale.appenders)} clients append ${String(scale.appendsEach)} events each, one event per request, at once; every D1 call (the appends', the runners', the daemon's) waits ${String(scale.latencyMs)} ms before it is sent. ` +
      `Freshness is, per event, the time from the commit of its append until the commit that put it in the read model, both read from D1's clock: the event row's recorded_at and the read-model row's seen_at are SQL defaults (${NOW_MS_SQL}), so the figures are the database's, not the bench's. ` +
      `p50 and p99 are over every event of ${plural(scale.rounds, "round")} (the variants in rotating order each round); round trips = ms ÷ ${String(scale.latencyMs)} ms. ` +
      `The projection is the eventsQuery runner (batchSize ${String(FRESH_BATCH)}) writing each batch's positions in one set-based insert; every round ends with every event in the read model exactly once (a primary key per event). ` +
      `Queries are the statements the projection sends to D1 (countD1; the appends are not counted), per 1,000 events, medians of the rounds. ` +
      `The daemon is a ProjectionDaemonObject (budget 900, lease: true) whose object wraps its own D1 binding in the same ${String(scale.latencyMs)} ms wrapper; each append calls notify() without awaiting it, and the runtime fires the alarms by itself. ` +
      `"a runner with lease: true started per append" is the example's ctx.waitUntil runner (a fresh runner per request), then one catch-up run, counted. ` +
      `The cron's freshness is computed from its period, not measured: an event waits for the next run, uniformly over the ${String(CRON_MS / 1000)} s, so p50 = ${count(cronP50)} ms and p99 = ${count(cronP99)} ms (its run's own time not added); ` +
      `its queries are measured: one leased run over the ${count(appends)} events (they all arrive within its minute here). ` +
      `"idle daemon, one append at a time": ${String(scale.idleAppends)} appends, each waited for until the daemon is idle again, the floor without contention; ` +
      `its median path: the notify() reaches the object ${count(floor.arrive)} ms after the append's commit, the alarm starts ${count(floor.alarm)} ms after the notify, ` +
      `and the run (a load, lease claim and read in one round trip, then the commit) commits ${count(floor.run)} ms after the alarm starts (the object's Date.now() against D1's clock). ` +
      underLoad +
      `Targets (the issue): the daemon's p50 within 3 round trips: ${met(daemonP50 <= 3)} (${tenths(daemonP50)}); p99 within 4: ${met(daemonP99 <= 4)} (${tenths(daemonP99)}); ` +
      `at most 1.2× the queries of one sequential runner: ${met(daemonRatio <= 1.2)} (${ratio(daemonRatio)}).`,
    columns: [
      "variant",
      "appenders × appends",
      "events measured",
      "p50 ms",
      "p99 ms",
      "p50 round trips",
      "p99 round trips",
      "queries per 1,000 events",
      "round trips per 1,000 events",
      "queries vs 1 sequential runner",
    ],
    rows: [
      row(FRESH_LABELS.sequential, `1 × ${count(appends)}`, sequential),
      row(FRESH_LABELS.daemon, many, daemon),
      row(FRESH_LABELS.waitUntil, many, waitUntil),
      [
        "cron, one run per minute (freshness computed)",
        many,
        count(cronCost.events),
        `${count(cronP50)} (computed)`,
        `${count(cronP99)} (computed)`,
        `${count(cronP50 / scale.latencyMs)} (computed)`,
        `${count(cronP99 / scale.latencyMs)} (computed)`,
        count(cronCost.queries),
        count(cronCost.roundTrips),
        ratio(cronCost.queries / sequential.queries),
      ],
      row("idle daemon, one append at a time", `1 × ${count(scale.idleAppends)}`, idleDaemon),
    ],
  };
}

async function cleanUpFresh(db: D1Database): Promise<void> {
  await db.batch([
    db.prepare(`DROP TABLE IF EXISTS ${FRESH_EVENTS}`),
    db.prepare(`DROP TABLE IF EXISTS ${FRESH_MODEL}`),
    db.prepare("DELETE FROM checkpoints WHERE name = ?1").bind(FRESH_NAME),
    db.prepare("DELETE FROM projection_leases WHERE name = ?1").bind(FRESH_NAME),
  ]);
}

// ------------------------------------------------------ catch-up and rebuild

const CREATE_TOTALS = (table: string): string => `CREATE TABLE ${table} (k TEXT PRIMARY KEY, total INTEGER NOT NULL, n INTEGER NOT NULL)`;

/** Drops every table and view of the read model (a switch leaves the read name a view of version 2's table). */
async function dropTotals(db: D1Database): Promise<D1PreparedStatement[]> {
  const { results } = await db
    .prepare("SELECT type, name FROM sqlite_master WHERE name GLOB ?1 AND type IN ('table', 'view') ORDER BY type DESC")
    .bind(`${TOTALS}*`)
    .all<{ type: string; name: string }>();
  return results.map(({ type, name }) => db.prepare(`DROP ${type === "view" ? "VIEW" : "TABLE"} IF EXISTS ${name}`));
}

/** Positions 1 to `events` in one statement (100 keys, values 1 to 7). */
async function fillLog(db: D1Database, events: number): Promise<void> {
  await db.batch([
    db.prepare(`DROP TABLE IF EXISTS ${LOG}`),
    db.prepare(`CREATE TABLE ${LOG} (position INTEGER PRIMARY KEY, k TEXT NOT NULL, v INTEGER NOT NULL)`),
    db
      .prepare(
        `INSERT INTO ${LOG} (position, k, v) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) ` +
          "SELECT i, 'k' || (i % 100), i % 7 + 1 FROM n",
      )
      .bind(events),
  ]);
}

/** Throws unless `table` holds every key's total and count of the log, and `checkpoint` is at `events`. */
async function verifyTotals(db: D1Database, label: string, table: string, checkpoint: string, events: number): Promise<void> {
  const totals = `SELECT k, SUM(v) AS total, COUNT(*) AS n FROM ${LOG} GROUP BY k`;
  const model = `SELECT k, total, n FROM ${table}`;
  const row = await db
    .prepare(
      `SELECT (SELECT COUNT(*) FROM (${totals} EXCEPT ${model})) + (SELECT COUNT(*) FROM (${model} EXCEPT ${totals})) AS wrong, ` +
        `(SELECT COALESCE(SUM(n), 0) FROM ${table}) AS applied, (SELECT position FROM checkpoints WHERE name = ?1) AS position`,
    )
    .bind(checkpoint)
    .first<{ wrong: number; applied: number; position: number | null }>();
  if (row?.wrong !== 0 || row.applied !== events || row.position !== events) {
    throw new Error(`${label}: ${String(row?.wrong)} keys wrong, ${String(row?.applied)} events applied, checkpoint at ${String(row?.position)}, of ${String(events)}`);
  }
}

/** One measured catch-up or rebuild: D1's clock from start to done, what was sent, and the invocations it took. */
interface Caught {
  readonly ms: number;
  readonly sent: Sent;
  readonly invocations: number;
  /** The most events one invocation projected. */
  readonly mostPerInvocation: number;
}

/** The daemon from notify() to done, by D1's clock. */
async function daemonUntilDone(db: D1Database, stub: Stub, scale: DaemonScale, label: string): Promise<Caught> {
  await stub.status(); // the object exists before the clock starts
  const start = await d1Now(db);
  await stub.notify();
  await idle(stub);
  const meter = await stub.meter();
  if (meter.doneAt === undefined) throw new Error(`${label}: the daemon went idle without finishing`);
  const over = meter.runs.filter((run) => run.ended === "failed" || (run.queries ?? 0) > scale.budget);
  if (over.length > 0) throw new Error(`${label}: runs failed or went over the budget of ${String(scale.budget)}: ${JSON.stringify(over)}`);
  return { ms: meter.doneAt - start, sent: meter, invocations: meter.runs.length, mostPerInvocation: Math.max(0, ...meter.events) };
}

function catchUpRows(
  scale: DaemonScale,
  measured: { uninterrupted: Caught[]; daemon: Caught[] },
  labels: { uninterrupted: string; daemon: string },
): { rows: (string | number)[][]; timeRatio: number; queryRatio: number; invocations: number; perInvocation: number } {
  const { uninterrupted, daemon } = measured;
  const timeRatio = median(daemon.map((d, i) => d.ms / (uninterrupted[i]?.ms ?? d.ms)));
  const queries = (runs: Caught[]): number => median(runs.map((run) => run.sent.queries));
  const trips = (runs: Caught[]): number => median(runs.map((run) => run.sent.roundTrips));
  const invocations = median(daemon.map((run) => run.invocations));
  const perInvocation = median(daemon.map((run) => run.mostPerInvocation));
  const queryRatio = queries(daemon) / queries(uninterrupted);
  // A cron invocation under the same budget projects what a daemon run does: the invocations the events need, one a minute.
  const cronInvocations = Math.ceil(scale.events / Math.max(perInvocation, 1));
  const cronMs = cronInvocations * CRON_MS;
  const base = median(uninterrupted.map((run) => run.ms));
  return {
    rows: [
      [labels.uninterrupted, "1", count(scale.events), count(queries(uninterrupted)), count(trips(uninterrupted)), spread(uninterrupted.map((run) => run.ms)), "1.00×", "1.00×"],
      [labels.daemon, count(invocations), count(perInvocation), count(queries(daemon)), count(trips(daemon)), spread(daemon.map((run) => run.ms)), ratio(timeRatio), ratio(queryRatio)],
      [
        `cron, one run per minute, budget ${count(scale.budget)} (computed)`,
        `${count(cronInvocations)} (computed)`,
        count(perInvocation),
        "about the daemon's",
        "about the daemon's",
        `${count(cronMs)} (computed: ${count(cronInvocations)} × ${String(CRON_MS / 1000)} s)`,
        ratio(cronMs / base),
        "—",
      ],
    ],
    timeRatio,
    queryRatio,
    invocations,
    perInvocation,
  };
}

const CATCH_UP_COLUMNS = [
  "variant",
  "invocations",
  "most events in one invocation",
  "queries",
  "round trips",
  "ms from start to done, median (min–max)",
  "time vs uninterrupted",
  "queries vs uninterrupted",
];

/** Catch-up: `events` from zero, the daemon chaining budgeted runs against one uninterrupted run. */
export async function daemonCatchUp(db: D1Database, daemons: Daemons, scale: DaemonScale): Promise<BenchTable> {
  await fillLog(db, scale.events);
  const restart = async (): Promise<void> => {
    await db.batch([
      ...(await dropTotals(db)),
      db.prepare(CREATE_TOTALS(TOTALS)),
      db.prepare("DELETE FROM checkpoints WHERE name = ?1").bind(CATCH_UP_NAME),
      db.prepare("DELETE FROM projection_leases WHERE name = ?1").bind(CATCH_UP_NAME),
    ]);
  };
  const measured = { uninterrupted: [] as Caught[], daemon: [] as Caught[] };
  const uninterrupted = async (): Promise<Caught> => {
    await restart();
    const slow = withLatency(db, scale.latencyMs); // a new binding: nothing remembered, as in a new isolate (or a new daemon object)
    const runner = catchUpRunner(slow.db, scale.batchSize);
    const start = await d1Now(db);
    const summary = await runner.run();
    const ms = (await d1Now(db)) - start;
    if (!summary.caughtUp) throw new Error(`the uninterrupted catch-up ended ${summary.ended}`);
    await verifyTotals(db, "uninterrupted catch-up", TOTALS, CATCH_UP_NAME, scale.events);
    return { ms, sent: slow.sent(), invocations: 1, mostPerInvocation: summary.events };
  };
  const daemon = async (): Promise<Caught> => {
    await restart();
    const stub = daemonOf(daemons, `mode=catchUp;latency=${String(scale.latencyMs)};batch=${String(scale.batchSize)};budget=${String(scale.budget)}`);
    const caught = await daemonUntilDone(db, stub, scale, "daemon catch-up");
    await verifyTotals(db, "daemon catch-up", TOTALS, CATCH_UP_NAME, scale.events);
    return caught;
  };
  await interleaved(scale.catchUpRuns, uninterrupted, daemon, measured);
  await db.batch([
    ...(await dropTotals(db)),
    db.prepare(`DROP TABLE IF EXISTS ${LOG}`),
    db.prepare("DELETE FROM checkpoints WHERE name = ?1").bind(CATCH_UP_NAME),
    db.prepare("DELETE FROM projection_leases WHERE name = ?1").bind(CATCH_UP_NAME),
  ]);
  const { timeRatio, queryRatio, invocations, perInvocation, rows } = catchUpRows(scale, measured, {
    uninterrupted: "one uninterrupted run, no query limit",
    daemon: `projection daemon, budget ${count(scale.budget)} per invocation, chained alarms`,
  });
  return {
    title: "Projection daemon: catch-up past the per-invocation limit",
    note:
      `${count(scale.events)} events projected from zero (no checkpoint) with set-based writes (one jsonRowStatements upsert per batch, summed per key over 100 keys), batchSize ${count(scale.batchSize)}, ` +
      `every D1 call delayed ${String(scale.latencyMs)} ms; ${plural(scale.catchUpRuns, "run")} of each variant, interleaved. ` +
      `The daemon (a new ProjectionDaemonObject, its runner with lease: true) runs within a budget of ${count(scale.budget)} queries per run (${budgetWhy(scale)}), ` +
      `each run an alarm invocation of its own, chained until caught up; its alarms fire by themselves. The uninterrupted run is the same runner in one invocation without a budget. ` +
      `Time is D1's clock from just before notify() (or run()) to just after the run that caught up returned (read in the daemon's onRun), so the chaining's alarms are in it; ` +
      `queries and round trips are what the projection sent (countD1). The read model is checked key by key after every run. ` +
      `The cron's time is computed: each of its invocations projects what a daemon run does under the same budget, one a minute. ` +
      `At this budget one invocation projects at most ${count(perInvocation)} events. ` +
      `Target (the issue): chaining costs at most 1.2× the uninterrupted run: ${met(timeRatio <= 1.2)} (${ratio(timeRatio)} the time, ${ratio(queryRatio)} the queries, over ${count(invocations)} invocations).`,
    columns: CATCH_UP_COLUMNS,
    rows,
  };
}

/** Rebuild: the same events into version 2 beside the live version 1, then the switch; the daemon with autoSwitch against one uninterrupted run and switchVersion. */
export async function daemonRebuild(db: D1Database, daemons: Daemons, scale: DaemonScale): Promise<BenchTable> {
  await fillLog(db, scale.events);
  const store = new D1CheckpointStore(db);
  const checkpoints = [REBUILD_NAME, `${REBUILD_NAME}@1`, `${REBUILD_NAME}@2`];
  const forget = (): D1PreparedStatement[] => [
    db.prepare("DELETE FROM projection_versions WHERE name = ?1").bind(REBUILD_NAME),
    db.prepare("DELETE FROM checkpoints WHERE name IN (SELECT value FROM json_each(?1))").bind(JSON.stringify(checkpoints)),
    db.prepare("DELETE FROM projection_leases WHERE name = ?1").bind(REBUILD_GROUP),
  ];
  /** Version 1 live and caught up (its read model written in one statement), version 2's rebuild started. */
  const prepare = async (): Promise<void> => {
    await db.batch([
      ...(await dropTotals(db)),
      ...forget(),
      db.prepare(CREATE_TOTALS(TOTALS)),
      db.prepare(`INSERT INTO ${TOTALS} (k, total, n) SELECT k, SUM(v), COUNT(*) FROM ${LOG} GROUP BY k`),
      db.prepare("INSERT INTO checkpoints (name, position) VALUES (?1, ?2)").bind(REBUILD_NAME, scale.events),
    ]);
    await store.startRebuild(REBUILD_NAME, 2, { tables: { [TOTALS]: TOTALS_V2 }, create: [db.prepare(CREATE_TOTALS(TOTALS_V2))] });
  };
  const verify = async (label: string): Promise<void> => {
    const versions = (await store.versions(REBUILD_NAME)).map((v) => `${String(v.version)} ${v.state}`).join(", ");
    if (versions !== "1 retired, 2 live") throw new Error(`${label}: versions ${versions}, not switched`);
    await verifyTotals(db, label, TOTALS, REBUILD_NAME, scale.events); // the read name, now a view of version 2's table
  };
  const measured = { uninterrupted: [] as Caught[], daemon: [] as Caught[] };
  const uninterrupted = async (): Promise<Caught> => {
    await prepare();
    const slow = withLatency(db, scale.latencyMs);
    const group = rebuildGroup(slow.db, scale.batchSize);
    const start = await d1Now(db);
    const summary = await group.run();
    if (!summary.caughtUp) throw new Error(`the uninterrupted rebuild ended ${summary.ended}`);
    await new D1CheckpointStore(slow.db).switchVersion(REBUILD_NAME, 2);
    const ms = (await d1Now(db)) - start;
    await verify("uninterrupted rebuild");
    return { ms, sent: slow.sent(), invocations: 1, mostPerInvocation: scale.events };
  };
  const daemon = async (): Promise<Caught> => {
    await prepare();
    const stub = daemonOf(daemons, `mode=rebuild;latency=${String(scale.latencyMs)};batch=${String(scale.batchSize)};budget=${String(scale.budget)}`);
    const caught = await daemonUntilDone(db, stub, scale, "daemon rebuild");
    await verify("daemon rebuild");
    return caught;
  };
  await interleaved(scale.catchUpRuns, uninterrupted, daemon, measured);
  await db.batch([...(await dropTotals(db)), ...forget(), db.prepare(`DROP TABLE IF EXISTS ${LOG}`)]);
  const { timeRatio, queryRatio, invocations, rows } = catchUpRows(scale, measured, {
    uninterrupted: "one uninterrupted group run, no query limit, then switchVersion",
    daemon: `projection daemon with autoSwitch, budget ${count(scale.budget)} per invocation, chained alarms`,
  });
  return {
    title: "Projection daemon: a rebuild beside the live version",
    note:
      `Version 1 of a projection is live and caught up at ${count(scale.events)} events; startRebuild starts version 2 beside it (its own table), ` +
      `and one ProjectionGroup of both versions (lease: true; it reads each batch once, only version 2 has anything to apply) projects the same ${count(scale.events)} events into version 2 with set-based writes, batchSize ${count(scale.batchSize)}, ` +
      `every D1 call delayed ${String(scale.latencyMs)} ms; ${plural(scale.catchUpRuns, "run")} of each variant, interleaved. ` +
      `The daemon (budget ${count(scale.budget)}: ${budgetWhy(scale)}; autoSwitch) chains runs until version 2 has caught up with version 1 and switches it live by itself (versions, both statuses, switchVersion); ` +
      `the uninterrupted variant runs the group once without a budget, then calls switchVersion. ` +
      `Time is D1's clock from just before notify() (or run()) to just after the switch returned; invocations count the daemon's runs to the end, the one after the switch (nothing left to do) included, and so do its queries. ` +
      `After every run the versions read "1 retired, 2 live" and the read name (now a view of version 2's table) holds every key's total and count. ` +
      `The cron's time is computed as in the catch-up. ` +
      `The catch-up's target applied here: at most 1.2× the uninterrupted run: ${met(timeRatio <= 1.2)} (${ratio(timeRatio)} the time, ${ratio(queryRatio)} the queries, over ${count(invocations)} invocations).`,
    columns: CATCH_UP_COLUMNS,
    rows,
  };
}

/** Runs the two variants `runs` times each, alternating which goes first, into `measured`. */
async function interleaved(
  runs: number,
  uninterrupted: () => Promise<Caught>,
  daemon: () => Promise<Caught>,
  measured: { readonly uninterrupted: Caught[]; readonly daemon: Caught[] },
): Promise<void> {
  for (let run = 0; run < runs; run++) {
    if (run % 2 === 0) {
      measured.uninterrupted.push(await uninterrupted());
      measured.daemon.push(await daemon());
    } else {
      measured.daemon.push(await daemon());
      measured.uninterrupted.push(await uninterrupted());
    }
  }
}
