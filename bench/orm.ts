// Read-model writes built with Drizzle or Kysely and committed through the
// adapters (drizzleStatements, kyselyStatements), against the same writes as
// raw D1 statements: per event (one upsert each) and set-based (one json_each
// upsert per batch), every variant committed with `commit`.
import { sql as drizzleSql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { DummyDriver, Kysely, sql as kyselySql, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler } from "kysely";
import { drizzleStatements } from "../src/drizzle.js";
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
type Writes = "per-event" | "set-based";

/** The statements of one batch of events: built by `library` and, for the ORMs, turned into statements by the adapter. */
type Build = (events: readonly Event[]) => D1PreparedStatement[];

function builders(db: D1Database): Record<Writes, Record<Library, Build>> {
  const orm = drizzle(db); // builds queries only: the statements run in the store's batch
  const qb = new Kysely<Database>({
    dialect: {
      createAdapter: () => new SqliteAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (kysely) => new SqliteIntrospector(kysely),
      createQueryCompiler: () => new SqliteQueryCompiler(),
    },
  });
  const rows = (events: readonly Event[]) => events.map(({ k, v }) => ({ k, v }));
  return {
    "per-event": {
      "raw D1": (events) => {
        const upsert = db.prepare(PER_EVENT_SQL);
        return events.map((e) => upsert.bind(e.k, e.v));
      },
      Drizzle: (events) =>
        drizzleStatements(
          db,
          events.map((e) =>
            orm
              .insert(totals)
              .values({ k: e.k, total: e.v, n: 1 })
              .onConflictDoUpdate({ target: totals.k, set: { total: drizzleSql`${totals.total} + excluded.total`, n: drizzleSql`${totals.n} + 1` } }),
          ),
        ),
      Kysely: (events) =>
        kyselyStatements(
          db,
          events.map((e) =>
            qb
              .insertInto(TABLE)
              .values({ k: e.k, total: e.v, n: 1 })
              .onConflict((oc) => oc.column("k").doUpdateSet((eb) => ({ total: eb(`${TABLE}.total`, "+", eb.ref("excluded.total")), n: eb(`${TABLE}.n`, "+", 1) }))),
          ),
        ),
    },
    "set-based": {
      "raw D1": (events) => jsonRowStatements(db, SET_BASED_SQL, rows(events)),
      Drizzle: (events) =>
        drizzleStatements(
          db,
          jsonRowChunks(rows(events)).map(
            (json) =>
              drizzleSql`INSERT INTO bench_orm_totals (k, total, n) SELECT value ->> 'k', SUM(value ->> 'v'), COUNT(*) FROM json_each(${json}) WHERE true GROUP BY 1 ON CONFLICT (k) DO UPDATE SET total = total + excluded.total, n = n + excluded.n`,
          ),
        ),
      Kysely: (events) =>
        kyselyStatements(
          db,
          jsonRowChunks(rows(events)).map((json) =>
            kyselySql`INSERT INTO bench_orm_totals (k, total, n) SELECT value ->> 'k', SUM(value ->> 'v'), COUNT(*) FROM json_each(${json}) WHERE true GROUP BY 1 ON CONFLICT (k) DO UPDATE SET total = total + excluded.total, n = n + excluded.n`.compile(qb),
          ),
        ),
    },
  };
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
): Promise<{ readonly stats: VariantStats[]; readonly statements: Map<string, number> }> {
  const slow = delayed(db, latencyMs);
  const store = new D1CheckpointStore(slow.db);
  const build = builders(slow.db);
  const statements = new Map<string, number>();
  let pending: string | undefined;
  const settle = async (): Promise<void> => {
    if (pending !== undefined) await verify(db, pending, events);
    pending = undefined;
  };
  const variants = (["per-event", "set-based"] as const).flatMap((writes) =>
    (["raw D1", "Drizzle", "Kysely"] as const).map((library): Variant => {
      const label = `${writes}: ${library}`;
      const project = build[writes][library];
      return {
        label,
        setup: async () => {
          await settle(); // the previous run's read model, before this one is reset
          await restart(db);
        },
        // Timed: building every batch's queries, the adapter's checks and prepare, and the commits.
        run: async () => {
          const before = slow.batches.length;
          let position = 0;
          for (let start = 0; start < events.length; start += BATCH) {
            const batch = events.slice(start, start + BATCH);
            await store.commit(NAME, position + batch.length, project(batch), { expected: position === 0 ? null : position });
            position += batch.length;
          }
          pending = label;
          statements.set(label, median(slow.batches.slice(before)));
          return events.length;
        },
      };
    }),
  );
  const stats = await interleave(variants, scale.runs);
  await settle();
  return { stats, statements };
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
  const versusRaw = (stats: readonly VariantStats[], index: number): number => {
    const baseline = stats[index - (index % 3)] as VariantStats; // the raw D1 variant of the same writes
    return timeRatio(stats[index] as VariantStats, baseline);
  };
  /** The larger ratio of the two adapters' variants of `writes` (rows 1 and 2, or 4 and 5). */
  const worst = (stats: readonly VariantStats[], writes: Writes): number => {
    const first = writes === "per-event" ? 1 : 4;
    return Math.max(versusRaw(stats, first), versusRaw(stats, first + 1));
  };
  const met = (writes: Writes): string => {
    const [onLocal, withLatency] = [worst(local.stats, writes), worst(slow.stats, writes)];
    const verdict = onLocal <= TARGET && withLatency <= TARGET ? "met" : "not met";
    return `${writes} writes ${verdict} (${ratio(onLocal)} on local D1, ${ratio(withLatency)} with ${scale.latencyMs} ms per call)`;
  };
  return {
    title: "Drizzle and Kysely adapters against raw D1 statements",
    note:
      `${count(events.length)} events per run into a total and a count per key (100 keys), committed with commit in batches of ${BATCH} ` +
      `(per-event: an upsert per event; set-based: one json_each upsert per batch), ${scale.runs} runs interleaved per setting. ` +
      `Each adapter variant builds its queries with the library (a Drizzle database on the binding; a compile-only Kysely) and turns them into statements ` +
      `with drizzleStatements or kyselyStatements; raw D1 prepares and binds the same writes. The timed section holds the building, the checks ` +
      "and every commit, so CPU spent building shows up in the time either way: if the clock moves only across I/O (ADR 0009), " +
      "it shows when the commit's response arrives, and nothing runs after the last one. " +
      (cpuClock > 0
        ? `In this run the clock also moved without I/O (a CPU-only loop read ${cpuClock.toFixed(0)} ms). `
        : "In this run the clock did not move without I/O (a CPU-only loop read 0 ms). ") +
      "What the clock cannot show is how a run's time splits between building queries and D1's own work. " +
      "Every run's read model and checkpoint are checked. " +
      `Target: every adapter within ${TARGET.toFixed(2)}× the time of raw D1 statements: ${met("set-based")}; ${met("per-event")}, ` +
      `where the variants differ only in how each batch's ${BATCH} queries are built (raw D1 binds one prepared statement ${BATCH} times).`,
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
