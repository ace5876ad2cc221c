// Read-model writes built with Drizzle or Kysely and committed through the
// adapters (drizzleStatements, kyselyStatements), against the same writes as
// raw D1 statements: per event (one upsert each) and set-based (one json_each
// upsert per batch), every variant committed with `commit`. Measured twice in
// the same interleaved run: end to end (building the queries timed) and with
// the queries built before the timed section (the adapters' own overhead).
import { sql as drizzleSql, type Query, type SQL } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { integer, SQLiteAsyncDialect, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { DummyDriver, Kysely, sql as kyselySql, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler, type CompiledQuery } from "kysely";
import { drizzleStatements, type DrizzleQueryBuilder } from "../src/drizzle.js";
import { D1CheckpointStore, jsonRowChunks, jsonRowStatements } from "../src/index.js";
import { kyselyStatements } from "../src/kysely.js";
import { interceptD1 } from "../src/testing.js";
import { count, interleave, median, rateWithSpread, ratio, timeRatio, type BenchTable, type Variant, type VariantStats } from "./harness.js";
import type { BenchScale } from "./suites.js";

const NAME = "bench-orm";
const TABLE = "bench_orm_totals";
/** Events per commit. */
const BATCH = 100;
/** The target: an adapter's time over raw D1 statements' time. */
const TARGET = 1.05;
/**
 * Runs per variant, as a multiple of the scale's: the adapters' own overhead
 * is far smaller than the spread of single runs on a busy machine, so the
 * median of per-run ratios needs more runs to settle within the 5% target.
 */
const RUNS_FACTOR = 3;

const PER_EVENT_SQL = `INSERT INTO ${TABLE} (k, total, n) VALUES (?1, ?2, 1) ON CONFLICT (k) DO UPDATE SET total = total + excluded.total, n = n + 1`;
const SET_BASED_SQL =
  `INSERT INTO ${TABLE} (k, total, n) SELECT value ->> 'k', SUM(value ->> 'v'), COUNT(*) FROM json_each(?1) WHERE true GROUP BY 1 ` +
  "ON CONFLICT (k) DO UPDATE SET total = total + excluded.total, n = n + excluded.n";

const totals = sqliteTable(TABLE, {
  k: text("k").primaryKey(),
  total: integer("total").notNull(),
  n: integer("n").notNull(),
});

interface Database {
  bench_orm_totals: { k: string; total: number; n: number };
}

interface Event {
  readonly k: string;
  readonly v: number;
}

type Library = "raw D1" | "Drizzle" | "Kysely";
type Orm = Exclude<Library, "raw D1">;
type Writes = "per-event" | "set-based";
/** End to end: the timed section builds the queries. Prebuilt: they are built (rendered, compiled; raw D1's SQL prepared) before it. */
type Timing = "end to end" | "prebuilt";

const LIBRARIES: readonly Library[] = ["raw D1", "Drizzle", "Kysely"];
const ORMS: readonly Orm[] = ["Drizzle", "Kysely"];
const WRITES: readonly Writes[] = ["per-event", "set-based"];

/** A batch's statements, made ready untimed: calling it (timed) gives new statements each time. */
type Ready = () => D1PreparedStatement[];

/** One measured variant: what it does with a batch before the timed section, and the raw D1 variant its time is divided by. */
interface Spec {
  readonly label: string;
  readonly writes: Writes;
  readonly timing: Timing;
  readonly library: Library;
  /** The label of the raw D1 variant it is compared with (its own label for a raw D1 variant). */
  readonly baseline: string;
  readonly plan: (events: readonly Event[]) => Ready;
}

/** A query Drizzle rendered before the timed section: `toSQL()` gives the rendering, as a builder's does. */
function rendered(query: Query): DrizzleQueryBuilder {
  return { toSQL: () => query, _: { dialect: "sqlite" } };
}

/**
 * Every variant, in the table's order. End to end, per kind of writes: raw D1
 * (hand-written SQL), Drizzle, Kysely, each adapter against that raw D1. Then
 * prebuilt, per kind of writes and library: raw D1 binding the very SQL and
 * parameters the library rendered (prepared before, bound in the timed
 * section), and the adapter turning the same rendered queries into
 * statements: D1 gets the same statements from both, so their difference is
 * the adapter's own work.
 */
function specs(db: D1Database): Spec[] {
  const orm = drizzle(db); // builds queries only: the statements run in the store's batch
  const dialect = new SQLiteAsyncDialect(); // renders sql templates, as drizzleStatements does
  const qb = new Kysely<Database>({
    dialect: {
      createAdapter: () => new SqliteAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (kysely) => new SqliteIntrospector(kysely),
      createQueryCompiler: () => new SqliteQueryCompiler(),
    },
  });
  const rows = (events: readonly Event[]) => events.map(({ k, v }) => ({ k, v }));
  const raw: Record<Writes, (events: readonly Event[]) => D1PreparedStatement[]> = {
    "per-event": (events) => {
      const upsert = db.prepare(PER_EVENT_SQL);
      return events.map((e) => upsert.bind(e.k, e.v));
    },
    "set-based": (events) => jsonRowStatements(db, SET_BASED_SQL, rows(events)),
  };
  // Each library's queries for a batch, unrendered.
  const drizzleQueries = {
    "per-event": (events: readonly Event[]) =>
      events.map((e) =>
        orm
          .insert(totals)
          .values({ k: e.k, total: e.v, n: 1 })
          .onConflictDoUpdate({ target: totals.k, set: { total: drizzleSql`${totals.total} + excluded.total`, n: drizzleSql`${totals.n} + 1` } }),
      ),
    "set-based": (events: readonly Event[]): SQL[] =>
      jsonRowChunks(rows(events)).map(
        (json) =>
          drizzleSql`INSERT INTO bench_orm_totals (k, total, n) SELECT value ->> 'k', SUM(value ->> 'v'), COUNT(*) FROM json_each(${json}) WHERE true GROUP BY 1 ON CONFLICT (k) DO UPDATE SET total = total + excluded.total, n = n + excluded.n`,
      ),
  };
  const kyselyQueries = {
    "per-event": (events: readonly Event[]) =>
      events.map((e) =>
        qb
          .insertInto(TABLE)
          .values({ k: e.k, total: e.v, n: 1 })
          .onConflict((oc) => oc.column("k").doUpdateSet((eb) => ({ total: eb(`${TABLE}.total`, "+", eb.ref("excluded.total")), n: eb(`${TABLE}.n`, "+", 1) }))),
      ),
    "set-based": (events: readonly Event[]): CompiledQuery[] =>
      jsonRowChunks(rows(events)).map((json) =>
        kyselySql`INSERT INTO bench_orm_totals (k, total, n) SELECT value ->> 'k', SUM(value ->> 'v'), COUNT(*) FROM json_each(${json}) WHERE true GROUP BY 1 ON CONFLICT (k) DO UPDATE SET total = total + excluded.total, n = n + excluded.n`.compile(qb),
      ),
  };
  const endToEnd: Record<Library, (writes: Writes) => (events: readonly Event[]) => D1PreparedStatement[]> = {
    "raw D1": (writes) => raw[writes],
    Drizzle: (writes) => (events) => drizzleStatements(db, drizzleQueries[writes](events)),
    Kysely: (writes) => (events) => kyselyStatements(db, kyselyQueries[writes](events)),
  };
  // A batch's queries rendered by Drizzle (its sql templates by its SQLite dialect) or compiled by Kysely: what the prebuilt variants start from.
  const drizzleRendered = (writes: Writes, events: readonly Event[]): Query[] =>
    (drizzleQueries[writes](events) as readonly (SQL | DrizzleQueryBuilder)[]).map((query) => ("toSQL" in query ? query.toSQL() : dialect.sqlToQuery(query)));
  const kyselyCompiled = (writes: Writes, events: readonly Event[]): CompiledQuery[] =>
    kyselyQueries[writes](events).map((query) => ("compile" in query ? query.compile() : query));
  const prebuiltRaw =
    (library: Orm, writes: Writes) =>
    (events: readonly Event[]): Ready => {
      const queries: readonly { readonly sql: string; readonly parameters: readonly unknown[] }[] =
        library === "Drizzle" ? drizzleRendered(writes, events).map(({ sql, params }) => ({ sql, parameters: params })) : kyselyCompiled(writes, events);
      const prepared = new Map(queries.map(({ sql }) => [sql, db.prepare(sql)] as const)); // once per distinct SQL, as the adapters prepare
      return () => queries.map(({ sql, parameters }) => (prepared.get(sql) as D1PreparedStatement).bind(...parameters));
    };
  const prebuiltAdapter =
    (library: Orm, writes: Writes) =>
    (events: readonly Event[]): Ready => {
      if (library === "Kysely") {
        const compiled = kyselyCompiled(writes, events);
        return () => kyselyStatements(db, compiled);
      }
      const built = drizzleRendered(writes, events).map(rendered);
      return () => drizzleStatements(db, built);
    };
  return [
    ...WRITES.flatMap((writes) =>
      LIBRARIES.map((library): Spec => {
        const build = endToEnd[library](writes);
        return { label: `${writes}: ${library}`, writes, timing: "end to end", library, baseline: `${writes}: raw D1`, plan: (events) => () => build(events) };
      }),
    ),
    ...WRITES.flatMap((writes) =>
      ORMS.flatMap((library): Spec[] => {
        const baseline = `${writes}, prebuilt: raw D1 with ${library}'s SQL`;
        return [
          { label: baseline, writes, timing: "prebuilt", library: "raw D1", baseline, plan: prebuiltRaw(library, writes) },
          { label: `${writes}, prebuilt: ${library}`, writes, timing: "prebuilt", library, baseline, plan: prebuiltAdapter(library, writes) },
        ];
      }),
    ),
  ];
}

/** `db`, every call delayed `latencyMs` (0: none), counting the statements D1 receives per round trip. */
function delayed(db: D1Database, latencyMs: number): { readonly db: D1Database; readonly batches: number[] } {
  const batches: number[] = [];
  const slow = interceptD1(db, async (call, send) => {
    batches.push(call.sql.length);
    if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));
    return send();
  });
  return { db: slow, batches };
}

/** Empties the read model and the checkpoint. */
async function restart(db: D1Database): Promise<void> {
  await db.batch([
    db.prepare(`CREATE TABLE IF NOT EXISTS ${TABLE} (k TEXT PRIMARY KEY, total INTEGER NOT NULL, n INTEGER NOT NULL)`),
    db.prepare(`DELETE FROM ${TABLE}`),
    db.prepare("DELETE FROM checkpoints WHERE name = ?1").bind(NAME),
  ]);
}

/** Throws unless the read model holds exactly `events` summed per key and the checkpoint is at their count. */
async function verify(db: D1Database, label: string, events: readonly Event[]): Promise<void> {
  const expected = new Map<string, { total: number; n: number }>();
  for (const { k, v } of events) {
    const sum = expected.get(k) ?? { total: 0, n: 0 };
    expected.set(k, { total: sum.total + v, n: sum.n + 1 });
  }
  const { results } = await db.prepare(`SELECT k, total, n FROM ${TABLE}`).all<{ k: string; total: number; n: number }>();
  const checkpoint = await db.prepare("SELECT position FROM checkpoints WHERE name = ?1").bind(NAME).first<{ position: number }>();
  const wrong = results.filter((row) => expected.get(row.k)?.total !== row.total || expected.get(row.k)?.n !== row.n).length;
  const problems = [
    results.length === expected.size && wrong === 0 ? "" : `${wrong} of ${results.length} rows wrong, ${expected.size} keys expected`,
    checkpoint?.position === events.length ? "" : `checkpoint at ${String(checkpoint?.position)}, not ${events.length}`,
  ].filter((problem) => problem !== "");
  if (problems.length > 0) throw new Error(`${label}: ${problems.join("; ")}`);
}

/** One measured setting: every variant interleaved on `db` delayed by `latencyMs`. */
async function measure(
  db: D1Database,
  scale: BenchScale,
  latencyMs: number,
  events: readonly Event[],
): Promise<{ readonly specs: readonly Spec[]; readonly stats: VariantStats[]; readonly statements: Map<string, number> }> {
  const slow = delayed(db, latencyMs);
  const store = new D1CheckpointStore(slow.db);
  const all = specs(slow.db);
  const batches: Event[][] = [];
  for (let start = 0; start < events.length; start += BATCH) batches.push(events.slice(start, start + BATCH));
  const statements = new Map<string, number>();
  let pending: string | undefined;
  const settle = async (): Promise<void> => {
    if (pending !== undefined) await verify(db, pending, events);
    pending = undefined;
  };
  const variants = all.map(({ label, plan }): Variant => {
    // Once, before any run: end to end, nothing (each call builds); prebuilt, every batch's queries rendered or compiled, and raw D1's
    // SQL prepared. Each call gives new statements, so every run reuses them, and no run's setup leaves garbage for the next timed section.
    const ready = batches.map(plan);
    return {
      label,
      setup: async () => {
        await settle(); // the previous run's read model, before this one is reset
        await restart(db);
      },
      // Timed: whatever building is left (end to end: all of it; prebuilt: the adapter's checks, prepare and bind, raw D1's bind), and the commits.
      run: async () => {
        const before = slow.batches.length;
        let position = 0;
        for (const [index, statementsOf] of ready.entries()) {
          const size = batches[index]?.length ?? 0;
          await store.commit(NAME, position + size, statementsOf(), { expected: position === 0 ? null : position });
          position += size;
        }
        pending = label;
        statements.set(label, median(slow.batches.slice(before)));
        return events.length;
      },
    };
  });
  const stats = await interleave(variants, scale.runs * RUNS_FACTOR);
  await settle();
  return { specs: all, stats, statements };
}

/**
 * Milliseconds the clock advanced across a CPU-bound loop with no I/O in it
 * (ADR 0009: inside workerd it may advance only across I/O, then this is 0).
 */
function clockWithoutIo(): number {
  const start = performance.now();
  let x = 0;
  for (let i = 0; i < 5_000_000; i++) x = (x * 31 + i) % 1_000_003;
  return x < 0 ? Number.NaN : performance.now() - start;
}

/**
 * The same read-model writes as raw D1 statements, through the Drizzle adapter
 * and through the Kysely adapter, each committed with `commit` in batches of
 * 100 events: events/s and time against raw, on local D1 and with network
 * latency added to every call.
 */
export async function ormAdapters(db: D1Database, scale: BenchScale): Promise<BenchTable> {
  const events: Event[] = Array.from({ length: scale.events }, (_, i) => ({ k: `k${i % 100}`, v: (i % 7) + 1 }));
  const cpuClock = clockWithoutIo();
  const local = await measure(db, scale, 0, events);
  const slow = await measure(db, scale, scale.latencyMs, events);
  await db.batch([db.prepare(`DROP TABLE IF EXISTS ${TABLE}`), db.prepare("DELETE FROM checkpoints WHERE name = ?1").bind(NAME)]);
  const { specs: all } = local;
  const statsOf = (stats: readonly VariantStats[], label: string): VariantStats => stats.find((s) => s.label === label) as VariantStats;
  /** The time of variant `index` over its raw D1 baseline's (the raw D1 variant of the same writes, binding the same SQL when prebuilt). */
  const versusRaw = (stats: readonly VariantStats[], index: number): number => {
    const spec = all[index] as Spec;
    return timeRatio(stats[index] as VariantStats, statsOf(stats, spec.baseline));
  };
  /** The larger ratio of the two adapters' variants of `writes` timed `timing`. */
  const worst = (stats: readonly VariantStats[], writes: Writes, timing: Timing): number =>
    Math.max(...all.flatMap((spec, index) => (spec.writes === writes && spec.timing === timing && spec.library !== "raw D1" ? [versusRaw(stats, index)] : [])));
  const met = (writes: Writes, timing: Timing): string => {
    const [onLocal, withLatency] = [worst(local.stats, writes, timing), worst(slow.stats, writes, timing)];
    const verdict = onLocal <= TARGET && withLatency <= TARGET ? "met" : "not met";
    return `${writes} writes ${verdict} (${ratio(onLocal)} on local D1, ${ratio(withLatency)} with ${scale.latencyMs} ms per call)`;
  };
  /** Whether the clock read whole milliseconds (workerd's timer), and what that does to the shortest runs' ratios on local D1. */
  const granularity = (): string => {
    const everyRun = [...local.stats, ...slow.stats].flatMap((s) => s.millis);
    if (!everyRun.every((ms) => Number.isInteger(ms))) return "";
    const shortest = (stats: readonly VariantStats[]): number => Math.max(Math.min(...stats.map((s) => median(s.millis))), 1);
    const [onLocal, withLatency] = [shortest(local.stats), shortest(slow.stats)];
    return (
      `The clock read whole milliseconds: the shortest runs last about ${onLocal.toFixed(0)} ms on local D1 and ${withLatency.toFixed(0)} ms ` +
      `with ${scale.latencyMs} ms per call, so their ratios move in steps of about ${Math.round(100 / onLocal)}% and ${Math.round(100 / withLatency)}%. `
    );
  };
  /** Microseconds per event `library`'s end-to-end per-event variant took over raw D1's, on local D1: the median over runs. */
  const buildingCost = (library: Orm): string => {
    const variant = statsOf(local.stats, `per-event: ${library}`);
    const baseline = statsOf(local.stats, "per-event: raw D1");
    const micros = median(variant.millis.map((ms, run) => ((ms - (baseline.millis[run] ?? ms)) * 1000) / events.length));
    return `${Math.max(micros, 0).toFixed(0)} µs`;
  };
  return {
    title: "Drizzle and Kysely adapters against raw D1 statements",
    note:
      `${count(events.length)} events per run into a total and a count per key (100 keys), committed with commit in batches of ${BATCH} ` +
      `(per-event: an upsert per event; set-based: one json_each upsert per batch), ${scale.runs * RUNS_FACTOR} runs of the ${all.length} variants interleaved per setting. ` +
      "Two readings of the same run. End to end (the first six rows): each adapter variant builds its queries with the library " +
      "(a Drizzle database on the binding; a compile-only Kysely) and turns them into statements with drizzleStatements or kyselyStatements, " +
      "against raw D1 preparing and binding hand-written SQL; the timed section holds the building, the checks and every commit. " +
      "Prebuilt (the other rows), the adapters' own overhead: every batch's queries are rendered before the timed section " +
      "(Drizzle's builders with toSQL(), its sql templates with its SQLite dialect; Kysely's compiled), which then holds only " +
      "drizzleStatements or kyselyStatements (their checks, prepare and bind) and the commits; each is compared with raw D1 binding " +
      "the very SQL and parameters its library rendered (prepared before the timed section, bound in it), so D1 gets the same statements " +
      "from both and the difference is the adapter's work alone. " +
      "CPU spent in the timed section shows up in the time either way: if the clock moves only across I/O (ADR 0009), " +
      "it shows when the commit's response arrives, and nothing runs after the last one. " +
      (cpuClock > 0
        ? `In this run the clock also moved without I/O (a CPU-only loop read ${cpuClock.toFixed(0)} ms). `
        : "In this run the clock did not move without I/O (a CPU-only loop read 0 ms). ") +
      granularity() +
      "Every run's read model and checkpoint are checked. " +
      `Target: every adapter within ${TARGET.toFixed(2)}× the time of raw D1 statements. ` +
      `Adapter overhead (prebuilt): ${met("per-event", "prebuilt")}; ${met("set-based", "prebuilt")}. ` +
      `End to end: ${met("set-based", "end to end")}, the default way to write a read model; ${met("per-event", "end to end")}: ` +
      `building each batch's ${BATCH} queries costs about ${buildingCost("Drizzle")} per event with Drizzle and ${buildingCost("Kysely")} with Kysely ` +
      `over raw D1 binding one prepared statement ${BATCH} times (local D1): the libraries' own cost of building and rendering a query ` +
      "(and of D1 running their longer SQL), not the adapters', as the prebuilt rows show.",
    columns: [
      "variant",
      "statements per commit",
      "events/s, local D1, median (min–max)",
      "time vs raw D1, local D1",
      `events/s, ${scale.latencyMs} ms per call, median (min–max)`,
      `time vs raw D1, ${scale.latencyMs} ms per call`,
    ],
    rows: local.stats.map((s, index) => {
      const delayedStats = slow.stats[index] as VariantStats;
      return [
        s.label,
        count(local.statements.get(s.label) ?? 0),
        rateWithSpread(s.rates),
        ratio(versusRaw(local.stats, index)),
        rateWithSpread(delayedStats.rates),
        ratio(versusRaw(slow.stats, index)),
      ];
    }),
  };
}
