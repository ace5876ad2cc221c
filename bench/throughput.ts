// As many events per invocation as D1 allows: set-based writes (one
// jsonRowStatements upsert per batch) against one statement per event, in the
// D1 queries an invocation may make (1,000) and in events/s when every D1 call
// costs network latency (the wrapper technique of bench/latency.ts: wait before
// each call; inside workerd the clock moves across that wait and the D1 calls).
import {
  D1_QUERIES_PER_INVOCATION,
  D1CheckpointStore,
  jsonRowStatements,
  ProjectionGroup,
  ProjectionRunner,
  type GroupProjection,
  type RunSummary,
} from "../src/index.js";
import { interceptD1 } from "../src/testing.js";
import { count, interleave, rateWithSpread, ratio, timeRatio, type BenchTable, type Variant, type VariantStats } from "./harness.js";
import type { BenchEvent, BenchScale } from "./suites.js";

const NAME = "bench-throughput";
const TOTALS = "bench_key_totals";
const UPSERT = `INSERT INTO ${TOTALS} (k, total, n)`;
const ADD = "ON CONFLICT (k) DO UPDATE SET total = total + excluded.total, n = n + excluded.n";
/** One statement per event. */
const PER_EVENT_SQL = `${UPSERT} VALUES (?1, ?2, 1) ${ADD}`;
/** One statement per batch: the batch's rows as one JSON value, summed per key. */
const SET_BASED_SQL = `${UPSERT} SELECT value ->> 'k', SUM(value ->> 'v'), COUNT(*) FROM json_each(?1) WHERE true GROUP BY 1 ${ADD}`;

type Writes = "per-event" | "set-based";

/**
 * A D1 binding that waits `latencyMs` before every call, counting round trips
 * and queries (statements) as D1 receives them, and the size of every commit
 * batch (a call that saves a checkpoint).
 */
interface Metered {
  readonly db: D1Database;
  readonly roundTrips: number;
  readonly queries: number;
  /** Queries in each commit batch so far, in order. */
  readonly commits: readonly number[];
}

function withLatency(db: D1Database, latencyMs: number): Metered {
  const tally = { roundTrips: 0, queries: 0 };
  const commits: number[] = [];
  const slow = interceptD1(db, async (call, send) => {
    tally.roundTrips += 1;
    tally.queries += call.sql.length;
    if (call.sql.some((sql) => sql.startsWith("INSERT INTO checkpoints"))) commits.push(call.sql.length);
    await new Promise((resolve) => setTimeout(resolve, latencyMs));
    return send();
  });
  return {
    db: slow,
    get roundTrips() {
      return tally.roundTrips;
    },
    get queries() {
      return tally.queries;
    },
    commits,
  };
}

function label(writes: Writes, batchSize: number): string {
  return `${writes} writes, batchSize ${count(batchSize)}`;
}

/** Up to `limit` events of `bench_events` after `after`. */
function eventsQuery(db: D1Database): (after: number, limit: number) => D1PreparedStatement {
  return (after, limit) => db.prepare("SELECT position, k, v FROM bench_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit);
}

/** The projection: `bench_events` summed per key into `bench_key_totals`, with the events query riding along. */
function projection(db: D1Database, store: D1CheckpointStore, writes: Writes, batchSize: number): ProjectionRunner<BenchEvent> {
  return new ProjectionRunner<BenchEvent>({
    name: NAME,
    store,
    batchSize,
    eventsQuery: eventsQuery(db),
    project: (events) => {
      if (writes === "set-based") return jsonRowStatements(db, SET_BASED_SQL, events.map((e) => ({ k: e.k, v: e.v })));
      const upsert = db.prepare(PER_EVENT_SQL);
      return events.map((e) => upsert.bind(e.k, e.v));
    },
  });
}

/** Fills `bench_events` with positions 1 to `events` in one statement (100 keys, values 1 to 7), and empties the read model. */
async function fill(db: D1Database, events: number): Promise<void> {
  await db.batch([
    db.prepare("CREATE TABLE IF NOT EXISTS bench_events (position INTEGER PRIMARY KEY, k TEXT NOT NULL, v INTEGER NOT NULL)"),
    db.prepare(`CREATE TABLE IF NOT EXISTS ${TOTALS} (k TEXT PRIMARY KEY, total INTEGER NOT NULL, n INTEGER NOT NULL)`),
    db.prepare("DELETE FROM bench_events"),
    db
      .prepare(
        "INSERT INTO bench_events (position, k, v) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) " +
          "SELECT i, 'k' || (i % 100), i % 7 + 1 FROM n",
      )
      .bind(events),
  ]);
  await restart(db);
}

/** Empties the read model and the projection's checkpoint. */
async function restart(db: D1Database): Promise<void> {
  await db.batch([db.prepare(`DELETE FROM ${TOTALS}`), db.prepare("DELETE FROM checkpoints WHERE name = ?1").bind(NAME)]);
}

async function cleanUp(db: D1Database): Promise<void> {
  await db.batch([
    db.prepare(`DROP TABLE IF EXISTS ${TOTALS}`),
    db.prepare("DELETE FROM bench_events"),
    db.prepare("DELETE FROM checkpoints WHERE name = ?1").bind(NAME),
  ]);
}

/** A finished run, to be checked before anything else touches the read model. */
interface Finished {
  readonly label: string;
  readonly summary: RunSummary;
  /** Queries the wrapper saw D1 receive during the run. */
  readonly queries: number;
}

/**
 * Throws unless the run projected positions 1 to `summary.to` exactly once:
 * the checkpoint is there, every key's total and count match the events up to
 * it, and the queries D1 received are the queries the summary counts.
 */
async function verify(db: D1Database, { label, summary, queries }: Finished): Promise<void> {
  const events = `SELECT k, SUM(v) AS total, COUNT(*) AS n FROM bench_events WHERE position <= ?1 GROUP BY k`;
  const model = `SELECT k, total, n FROM ${TOTALS}`;
  const row = await db
    .prepare(
      `SELECT (SELECT COUNT(*) FROM (${events} EXCEPT ${model})) + (SELECT COUNT(*) FROM (${model} EXCEPT ${events})) AS wrong, ` +
        `(SELECT COALESCE(SUM(n), 0) FROM ${TOTALS}) AS applied, (SELECT position FROM checkpoints WHERE name = ?2) AS checkpoint`,
    )
    .bind(summary.to, NAME)
    .first<{ wrong: number; applied: number; checkpoint: number | null }>();
  const problems = [
    row?.wrong === 0 ? "" : `${String(row?.wrong)} rows differ between the read model and the events' totals per key`,
    row?.applied === summary.to && summary.events === summary.to && summary.from === 0
      ? ""
      : `${String(row?.applied)} events applied, the summary says ${summary.events} from ${summary.from} to ${summary.to}`,
    row?.checkpoint === summary.to ? "" : `checkpoint at ${String(row?.checkpoint)}, not ${summary.to}`,
    queries === summary.queries ? "" : `D1 received ${queries} queries, the summary counts ${summary.queries}`,
  ].filter((problem) => problem !== "");
  if (problems.length > 0) throw new Error(`${label}: ${problems.join("; ")}`);
}

/** `1,020.2` */
function tenths(value: number): string {
  return value.toLocaleString("en-US", { maximumFractionDigits: 1 });
}

function met(ok: boolean): string {
  return ok ? "met" : "not met";
}

/**
 * Per-event against set-based writes at batch sizes 100 and 1,000, every D1
 * call delayed: queries and round trips per 1,000 events, and events/s.
 */
export async function setBasedWrites(db: D1Database, scale: BenchScale): Promise<BenchTable> {
  const events = scale.events * 10; // 10,000 in npm run bench, 300 in the smoke run
  await fill(db, events);
  const slow = withLatency(db, scale.latencyMs);
  const store = new D1CheckpointStore(slow.db);
  const cases: readonly (readonly [Writes, number])[] = [
    ["per-event", 100],
    ["set-based", 100],
    ["per-event", 1000],
    ["set-based", 1000],
  ];
  const costs = new Map<string, { queries: number; roundTrips: number }>();
  let pending: Finished | undefined;
  const settle = async (): Promise<void> => {
    if (pending === undefined) return;
    const finished = pending;
    pending = undefined;
    await verify(db, finished);
    if (finished.summary.to !== events) throw new Error(`${finished.label}: projected ${finished.summary.to} of ${events} events (${finished.summary.ended})`);
  };
  const variants = cases.map(([writes, batchSize]): Variant => {
    const name = label(writes, batchSize);
    const runner = projection(slow.db, store, writes, batchSize);
    return {
      label: name,
      setup: async () => {
        await settle(); // the previous run's read model, before this one is reset
        await restart(db);
        await store.load(NAME); // this isolate has seen the projection (a runner that ran before): position 0
      },
      run: async () => {
        const before = { queries: slow.queries, roundTrips: slow.roundTrips };
        const summary = await runner.run();
        const queries = slow.queries - before.queries;
        pending = { label: name, summary, queries };
        costs.set(name, { queries, roundTrips: slow.roundTrips - before.roundTrips });
        return summary.events;
      },
    };
  });
  const stats = await interleave(variants, scale.runs);
  await settle();
  await cleanUp(db);
  const perThousand = (name: string, key: "queries" | "roundTrips"): number => ((costs.get(name)?.[key] ?? 0) * 1000) / events;
  const baseline = stats[0] as VariantStats;
  const best = label("set-based", 1000);
  const bestQueries = perThousand(best, "queries");
  const bestRatio = timeRatio(baseline, stats[3] as VariantStats);
  return {
    title: "Set-based writes against one statement per event",
    note:
      `The eventsQuery runner projecting ${count(events)} events from scratch per run into a total and a count per key (100 keys), ` +
      `every D1 call delayed ${scale.latencyMs} ms as in "Projection with network latency", ${scale.runs} runs interleaved; ` +
      `per-event writes send one upsert per event, set-based writes one jsonRowStatements upsert with GROUP BY per batch. ` +
      `Queries are the statements D1 receives (each one in a batch() counts toward an invocation's ${count(D1_QUERIES_PER_INVOCATION)}), ` +
      `the same as RunSummary.queries; every run's read model is checked key by key. ` +
      `Targets: set-based writes at batchSize 1,000 within 4 queries per 1,000 events: ${met(bestQueries <= 4)} (${tenths(bestQueries)}); ` +
      `at least 8× the events/s of per-event writes at batchSize 100: ${met(bestRatio >= 8)} (${ratio(bestRatio)}).`,
    columns: ["variant", "queries per 1,000 events", "round trips per 1,000 events", "events/s median (min–max)", "events/s vs per-event, batchSize 100"],
    rows: stats.map((s) => [
      s.label,
      tenths(perThousand(s.label, "queries")),
      tenths(perThousand(s.label, "roundTrips")),
      rateWithSpread(s.rates),
      ratio(timeRatio(baseline, s)),
    ]),
  };
}

/**
 * One run with a budget of D1's 1,000 queries per invocation, as a fresh
 * isolate's first run: how many events it projects, per-event against set-based.
 */
export async function oneInvocation(db: D1Database, scale: BenchScale): Promise<BenchTable> {
  const events = scale.events * 100; // 100,000 in npm run bench, 3,000 in the smoke run
  const target = 100_000;
  const largest = 5000;
  await fill(db, events);
  const cases: readonly (readonly [Writes, number])[] = [
    ["per-event", 100],
    ["set-based", 1000],
    ["set-based", largest],
  ];
  const rows: (string | number)[][] = [];
  let projected = 0;
  for (const [writes, batchSize] of cases) {
    await restart(db);
    const slow = withLatency(db, scale.latencyMs); // a new binding: nothing remembered, as in a new isolate
    const name = label(writes, batchSize);
    const start = performance.now();
    const runner = projection(slow.db, new D1CheckpointStore(slow.db), writes, batchSize);
    const summary = await runner.run({ budget: D1_QUERIES_PER_INVOCATION });
    const seconds = (performance.now() - start) / 1000;
    await verify(db, { label: name, summary, queries: slow.queries });
    if (writes === "set-based" && batchSize === largest) projected = summary.events;
    rows.push([name, count(summary.events), count(summary.queries), count(slow.roundTrips), summary.ended, seconds.toFixed(2)]);
  }
  await cleanUp(db);
  return {
    title: "One invocation, a budget of 1,000 queries",
    note:
      `One run({ budget: ${count(D1_QUERIES_PER_INVOCATION)} }) per variant over ${count(events)} events, every D1 call delayed ${scale.latencyMs} ms, ` +
      `starting without a checkpoint in a new binding (load and first read in two round trips); the read model is checked key by key after each. ` +
      `Target: at least ${count(target)} events in one invocation (set-based writes, batchSize ${count(largest)}): ${met(projected >= target)} (${count(projected)}).`,
    columns: ["variant", "events projected", "queries", "round trips", "run ended", `seconds at ${scale.latencyMs} ms per call`],
    rows,
  };
}

// Five projections over one event log: one ProjectionGroup (each batch read
// once, every projection committed in one batch) against five runners one
// after another, and one runner alone as the baseline.

const GROUP = "bench-group";
/** The checkpoint names of the five projections; each has its own rows of `bench_projection_totals`. */
const MEMBERS: readonly string[] = Array.from({ length: 5 }, (_, i) => `bench-projection-${i + 1}`);
const MODEL = "bench_projection_totals";
const MODEL_ADD = "ON CONFLICT (projection, k) DO UPDATE SET total = total + excluded.total, n = n + excluded.n";
const MODEL_PER_EVENT_SQL = `INSERT INTO ${MODEL} (projection, k, total, n) VALUES (?1, ?2, ?3, 1) ${MODEL_ADD}`;

/** One projection of the five: the events summed per key into its own rows (set-based: one upsert per batch; per-event: one per event). */
function member(db: D1Database, name: string, writes: Writes): GroupProjection<BenchEvent, readonly D1PreparedStatement[]> {
  // The name is one of MEMBERS: a literal in the SQL keeps the JSON rows to k and v, as in setBasedWrites.
  const setBased = `INSERT INTO ${MODEL} (projection, k, total, n) SELECT '${name}', value ->> 'k', SUM(value ->> 'v'), COUNT(*) FROM json_each(?1) WHERE true GROUP BY 2 ${MODEL_ADD}`;
  return {
    name,
    project: (events) => {
      if (writes === "set-based") return jsonRowStatements(db, setBased, events.map((e) => ({ k: e.k, v: e.v })));
      const upsert = db.prepare(MODEL_PER_EVENT_SQL);
      return events.map((e) => upsert.bind(name, e.k, e.v));
    },
  };
}

/** Empties the five projections' read model and their checkpoints. */
async function restartMembers(db: D1Database): Promise<void> {
  await db.batch([
    db.prepare(`CREATE TABLE IF NOT EXISTS ${MODEL} (projection TEXT NOT NULL, k TEXT NOT NULL, total INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (projection, k))`),
    db.prepare(`DELETE FROM ${MODEL}`),
    db.prepare("DELETE FROM checkpoints WHERE name IN (SELECT value FROM json_each(?1))").bind(JSON.stringify(MEMBERS)),
  ]);
}

/** What a run did for one projection. */
type Projected = Pick<RunSummary, "name" | "from" | "to" | "events"> & { readonly ended: string };

/** A finished run of one or more projections, to be checked before anything else touches the read model. */
interface MembersFinished {
  readonly label: string;
  /** The checkpoint names of the projections the variant runs. */
  readonly names: readonly string[];
  /** One per projection the run reports. */
  readonly projected: readonly Projected[];
  /** Queries the run summaries count (the group's, or the runners' summed). */
  readonly summaryQueries: number;
  /** Queries the wrapper saw D1 receive during the run. */
  readonly queries: number;
}

/**
 * Throws unless every projection of the run projected positions 1 to `events`
 * exactly once: its summary says so, its rows hold every key's total and count
 * (and no other rows exist), its checkpoint is at `events`, and the queries D1
 * received are the queries the summaries count.
 */
async function verifyMembers(db: D1Database, events: number, { label, names, projected, summaryQueries, queries }: MembersFinished): Promise<void> {
  const reported = projected.map((p) => p.name);
  const row = await db
    .prepare(
      "WITH names(p) AS (SELECT value FROM json_each(?2)), " +
        "totals AS (SELECT k, SUM(v) AS total, COUNT(*) AS n FROM bench_events WHERE position <= ?1 GROUP BY k), " +
        "expected AS (SELECT p AS projection, k, total, n FROM names, totals), " +
        `model AS (SELECT projection, k, total, n FROM ${MODEL}) ` +
        "SELECT (SELECT COUNT(*) FROM (SELECT * FROM expected EXCEPT SELECT * FROM model)) + " +
        "(SELECT COUNT(*) FROM (SELECT * FROM model EXCEPT SELECT * FROM expected)) AS wrong, " +
        `(SELECT json_group_object(p, (SELECT COALESCE(SUM(n), 0) FROM ${MODEL} WHERE projection = p)) FROM names) AS applied, ` +
        "(SELECT json_group_object(p, (SELECT position FROM checkpoints WHERE name = p)) FROM names) AS checkpoints",
    )
    .bind(events, JSON.stringify(names))
    .first<{ wrong: number; applied: string; checkpoints: string }>();
  const applied = JSON.parse(row?.applied ?? "{}") as Record<string, number>;
  const checkpoints = JSON.parse(row?.checkpoints ?? "{}") as Record<string, number | null>;
  const problems = [
    reported.join() === names.join() ? "" : `the summaries report ${reported.join(", ")}, not ${names.join(", ")}`,
    row?.wrong === 0 ? "" : `${String(row?.wrong)} rows differ between the read model and the events' totals per projection and key`,
    ...projected.map(({ name, from, to, events: counted, ended }) =>
      from === 0 && to === events && counted === events && ended === "caughtUp" && applied[name] === events && checkpoints[name] === events
        ? ""
        : `${name}: ${String(applied[name])} events applied, checkpoint at ${String(checkpoints[name])}, ` +
          `the summary says ${counted} from ${from} to ${to} (${ended}); expected ${events}`,
    ),
    queries === summaryQueries ? "" : `D1 received ${queries} queries, the summaries count ${summaryQueries}`,
  ].filter((problem) => problem !== "");
  if (problems.length > 0) throw new Error(`${label}: ${problems.join("; ")}`);
}

/** A variant of the group suite: which projections it runs, and how. */
interface MembersCase {
  readonly label: string;
  readonly names: readonly string[];
  /** Runs every projection to the end of the log: what each did, and the queries the summaries count. */
  readonly run: () => Promise<{ readonly projected: readonly Projected[]; readonly summaryQueries: number }>;
}

const projectedOf = ({ name, from, to, events, ended }: Projected): Projected => ({ name, from, to, events, ended });

/**
 * Five projections over the same events: one ProjectionGroup against five
 * ProjectionRunners one after another, and one runner alone, every D1 call
 * delayed: queries and round trips per 1,000 events, the largest commit
 * batch, and events/s (each event counted once per projection).
 */
export async function projectionGroupWrites(db: D1Database, scale: BenchScale): Promise<BenchTable> {
  const events = scale.events * 10; // 10,000 in npm run bench, 300 in the smoke run
  await fill(db, events);
  await restartMembers(db);
  const slow = withLatency(db, scale.latencyMs);
  const store = new D1CheckpointStore(slow.db);
  const query = eventsQuery(slow.db);
  const group = (writes: Writes, batchSize: number): MembersCase => {
    const projections = new ProjectionGroup<BenchEvent>({ name: GROUP, store, batchSize, eventsQuery: query, projections: MEMBERS.map((name) => member(slow.db, name, writes)) });
    return {
      label: `five projections as a group, ${label(writes, batchSize)}`,
      names: MEMBERS,
      run: async () => {
        const summary = await projections.run();
        return { projected: summary.projections.map(projectedOf), summaryQueries: summary.queries };
      },
    };
  };
  const runners = (names: readonly string[], writes: Writes, batchSize: number, name: string): MembersCase => {
    const each = names.map(
      (checkpoint) => new ProjectionRunner<BenchEvent>({ name: checkpoint, store, batchSize, eventsQuery: query, project: member(slow.db, checkpoint, writes).project }),
    );
    return {
      label: `${name}, ${label(writes, batchSize)}`,
      names,
      run: async () => {
        const summaries: RunSummary[] = [];
        for (const runner of each) summaries.push(await runner.run());
        return { projected: summaries.map(projectedOf), summaryQueries: summaries.reduce((n, summary) => n + summary.queries, 0) };
      },
    };
  };
  const grouped = group("set-based", 1000);
  const separate = runners(MEMBERS, "set-based", 1000, "five separate runners");
  const one = runners(MEMBERS.slice(0, 1), "set-based", 1000, "one runner");
  const perEvent = group("per-event", 100);
  const costs = new Map<string, { queries: number; roundTrips: number; maxCommit: number }>();
  let pending: MembersFinished | undefined;
  const settle = async (): Promise<void> => {
    if (pending === undefined) return;
    const finished = pending;
    pending = undefined;
    await verifyMembers(db, events, finished);
  };
  const variant = (measured: MembersCase): Variant & Required<Pick<Variant, "setup">> => ({
    label: measured.label,
    setup: async () => {
      await settle(); // the previous run's read model, before this one is reset
      await restartMembers(db);
      await store.loadMany(measured.names); // this isolate has seen the projections (runs before): position 0
    },
    run: async () => {
      const before = { queries: slow.queries, roundTrips: slow.roundTrips, commits: slow.commits.length };
      const { projected, summaryQueries } = await measured.run();
      const queries = slow.queries - before.queries;
      pending = { label: measured.label, names: measured.names, projected, summaryQueries, queries };
      costs.set(measured.label, { queries, roundTrips: slow.roundTrips - before.roundTrips, maxCommit: Math.max(0, ...slow.commits.slice(before.commits)) });
      return events * measured.names.length;
    },
  });
  const stats = await interleave([grouped, separate, one].map(variant), scale.runs);
  // Per-event writes send 50 times the queries: one run after the others (15 would add over a minute to npm run bench).
  const single = variant(perEvent);
  await single.setup();
  const started = performance.now();
  const projectedOnce = await single.run();
  const onceRate = (projectedOnce * 1000) / Math.max(performance.now() - started, 0.001);
  await settle();
  await db.batch([
    db.prepare(`DROP TABLE IF EXISTS ${MODEL}`),
    db.prepare("DELETE FROM checkpoints WHERE name IN (SELECT value FROM json_each(?1))").bind(JSON.stringify(MEMBERS)),
  ]);
  await cleanUp(db);
  const cost = (name: string): { queries: number; roundTrips: number; maxCommit: number } => costs.get(name) ?? { queries: 0, roundTrips: 0, maxCommit: 0 };
  const perThousand = (value: number): number => (value * 1000) / events;
  const baseline = cost(one.label).roundTrips;
  const groupRatio = cost(grouped.label).roundTrips / baseline;
  const groupCommit = cost(grouped.label).maxCommit;
  const commitLimit = 2 * MEMBERS.length + 2;
  const [groupStats, separateStats] = stats as [VariantStats, VariantStats, VariantStats];
  const rates = new Map<string, string>([...stats.map((s): [string, string] => [s.label, rateWithSpread(s.rates)]), [perEvent.label, `${count(onceRate)} (1 run)`]]);
  return {
    title: "Five projections: one group against five runners",
    note:
      `${MEMBERS.length} projections over the same ${count(events)} events, each summing them per key (100 keys) into its own rows of one table, ` +
      `from scratch per run, every D1 call delayed ${scale.latencyMs} ms as in "Projection with network latency". ` +
      `The group reads each batch once and commits every projection's writes and conditional checkpoint in one batch with the next read; ` +
      `the five runners run one after another; one runner runs the first projection alone. ` +
      `The first three variants ran ${scale.runs} times interleaved; the group with per-event writes (one upsert per event) ran once, after them. ` +
      `Queries and round trips are per 1,000 events of the log, not per projection; events/s count each event once per projection it is projected into ` +
      `(${MEMBERS.length} × ${count(events)} per run for five projections). A commit batch is a call that saves a checkpoint. ` +
      `Every run's summaries, read model (every projection's totals and counts per key) and checkpoints are checked, and the queries D1 received equal the summaries' queries. ` +
      `The five runners take ${ratio(timeRatio(separateStats, groupStats))} the time of the group (median of per-run ratios). ` +
      `Targets: the group of ${MEMBERS.length} (set-based writes, batchSize 1,000) within 1.2× the round trips of one runner: ${met(groupRatio <= 1.2)} (${ratio(groupRatio)}); ` +
      `at most 2N + 2 = ${commitLimit} queries per commit batch with set-based writes: ${met(groupCommit <= commitLimit)} (${count(groupCommit)}).`,
    columns: [
      "variant",
      "queries per 1,000 events",
      "round trips per 1,000 events",
      "events/s, each event once per projection, median (min–max)",
      "round trips vs one runner",
      "max queries per commit batch",
    ],
    rows: [grouped, separate, one, perEvent].map(({ label: name }) => {
      const { queries, roundTrips, maxCommit } = cost(name);
      return [name, tenths(perThousand(queries)), tenths(perThousand(roundTrips)), rates.get(name) ?? "", ratio(roundTrips / baseline), count(maxCommit)];
    }),
  };
}
