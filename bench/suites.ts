// The benchmark suites. Each takes the database and a scale, and returns
// tables; the same code runs at full size (npm run bench) and tiny (npm test).
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { D1CheckpointStore, ProjectionRunner, type CheckpointStore, type D1Client } from "../src/index.js";
import { countD1, interceptD1 } from "../src/testing.js";
import {
  count,
  interleave,
  median,
  rateWithSpread,
  ratio,
  timeRatio,
  type BenchTable,
  type Variant,
  type VariantStats,
} from "./harness.js";

/** How big and how often. */
export interface BenchScale {
  /** Runs per variant (the median is reported). */
  readonly runs: number;
  /** Operations per run for save, load, reset and commit. */
  readonly ops: number;
  /** Checkpoint counts for the listing comparison. */
  readonly listingSizes: readonly number[];
  /** Runs per listing variant. */
  readonly listingRuns: number;
  /** Events for the runner comparisons. */
  readonly events: number;
  /** Milliseconds the latency wrapper waits before each D1 call. */
  readonly latencyMs: number;
}

/** What `npm run bench` measures. */
export const FULL: BenchScale = { runs: 15, ops: 200, listingSizes: [10_000, 100_000, 1_000_000], listingRuns: 3, events: 1000, latencyMs: 10 };

/** The smoke run inside `npm test`: every code path, tiny sizes. */
export const SMOKE: BenchScale = { runs: 2, ops: 4, listingSizes: [120], listingRuns: 2, events: 30, latencyMs: 1 };

const checkpoints = sqliteTable("checkpoints", {
  name: text("name").primaryKey(),
  position: integer("position").notNull(),
});

const UPSERT =
  "INSERT INTO checkpoints (name, position) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET position = excluded.position";
const NAMES = 50;

async function clear(db: D1Database): Promise<void> {
  await db.prepare("DELETE FROM checkpoints").run();
}

async function seedRaw(db: D1Database, prefix: string): Promise<void> {
  const insert = db.prepare(UPSERT);
  await db.batch(Array.from({ length: NAMES }, (_, i) => insert.bind(`${prefix}/${i}`, i)));
}

type Operation = "save" | "load" | "reset";
const OPERATIONS: readonly Operation[] = ["save", "load", "reset"];

/** `ops` sequential calls of `each`, as one timed run. */
function loop(scale: BenchScale, each: (i: number) => Promise<unknown>): () => Promise<number> {
  return async () => {
    for (let i = 0; i < scale.ops; i++) await each(i);
    return scale.ops;
  };
}

/** One variant per store: `operation` over its own names (seeded first for load and reset). */
function storeVariants(stores: Readonly<Record<string, CheckpointStore>>, operation: Operation, scale: BenchScale): Variant[] {
  return Object.entries(stores).map(([label, store]) => ({
    label,
    setup: async () => {
      if (operation !== "save") for (let i = 0; i < NAMES; i++) await store.save(`${label}/${i}`, i);
    },
    run: loop(scale, (i) => {
      const name = `${label}/${i % NAMES}`;
      if (operation === "save") return store.save(name, i);
      if (operation === "load") return store.load(name);
      return store.reset(name);
    }),
  }));
}

/**
 * save, load and reset: every given store against raw `prepare().bind().run()`
 * of the same SQL and against drizzle-orm's D1 driver doing the same thing.
 */
export async function operations(
  db: D1Database,
  scale: BenchScale,
  stores: Readonly<Record<string, CheckpointStore>>,
): Promise<BenchTable> {
  const orm = drizzle(db);
  const rows: (string | number)[][] = [];
  for (const operation of OPERATIONS) {
    const seed = (prefix: string) => () => (operation === "save" ? Promise.resolve() : seedRaw(db, prefix));
    const raw: Variant = {
      label: "raw D1",
      setup: seed("raw"),
      run: loop(scale, (i) => {
        const name = `raw/${i % NAMES}`;
        if (operation === "save") return db.prepare(UPSERT).bind(name, i).run();
        if (operation === "load") return db.prepare("SELECT position FROM checkpoints WHERE name = ?1").bind(name).first();
        return db.prepare("DELETE FROM checkpoints WHERE name = ?1").bind(name).run();
      }),
    };
    const viaDrizzle: Variant = {
      label: "drizzle-orm",
      setup: seed("orm"),
      run: loop(scale, (i) => {
        const name = `orm/${i % NAMES}`;
        if (operation === "save") {
          return orm
            .insert(checkpoints)
            .values({ name, position: i })
            .onConflictDoUpdate({ target: checkpoints.name, set: { position: i } })
            .run();
        }
        if (operation === "load") {
          return orm.select({ position: checkpoints.position }).from(checkpoints).where(eq(checkpoints.name, name)).get();
        }
        return orm.delete(checkpoints).where(eq(checkpoints.name, name)).run();
      }),
    };
    await clear(db);
    const stats = await interleave([raw, ...storeVariants(stores, operation, scale), viaDrizzle], scale.runs);
    const baseline = stats[0] as VariantStats;
    for (const s of stats) rows.push([operation, s.label, rateWithSpread(s.rates), ratio(timeRatio(s, baseline))]);
  }
  await clear(db);
  return {
    title: "save, load, reset",
    note: `${scale.ops} sequential operations per run over ${NAMES} names, ${scale.runs} runs interleaved; time ratio = the median over runs of (variant time / raw D1 time in the same run).`,
    columns: ["operation", "variant", "ops/s median (min–max)", "time vs raw D1"],
    rows,
  };
}

/**
 * The same operations on stores that do no I/O (the memory store), measured
 * in Node: inside workerd the clock only advances across I/O.
 */
export async function inMemoryOperations(scale: BenchScale, stores: Readonly<Record<string, CheckpointStore>>): Promise<BenchTable> {
  const rows: (string | number)[][] = [];
  for (const operation of OPERATIONS) {
    const stats = await interleave(storeVariants(stores, operation, scale), scale.runs);
    for (const s of stats) rows.push([operation, s.label, rateWithSpread(s.rates)]);
  }
  return {
    title: "In-memory store, for reference",
    note: `Measured in Node (inside workerd the clock does not advance without I/O): ${scale.ops} operations per run, ${scale.runs} runs.`,
    columns: ["operation", "store", "ops/s median (min–max)"],
    rows,
  };
}

/** Round trips per operation, counted through a wrapping D1 proxy. */
export async function roundTrips(db: D1Database): Promise<BenchTable> {
  const counted = countD1(db);
  const store = new D1CheckpointStore(counted.db);
  await clear(db);
  await seedRaw(db, "rt");
  const measure = async (label: string, act: () => Promise<unknown>): Promise<(string | number)[]> => {
    counted.clear();
    await act();
    return [label, counted.calls.length, counted.calls.map((c) => c.kind).join(", ")];
  };
  const drain = (iterable: AsyncIterable<unknown>): Promise<unknown[]> => Array.fromAsync(iterable);
  const rows = [
    await measure("save", () => store.save("rt/1", 2)),
    await measure("save with expected", () => store.save("rt/1", 3, { expected: 2 })),
    await measure("load", () => store.load("rt/1")),
    await measure("reset", () => store.reset("rt/1")),
    await measure(`names(), ${NAMES - 1} names (one page)`, () => drain(store.names())),
    await measure(`entries(), ${NAMES - 1} names, pageSize 20`, () => drain(store.entries({ pageSize: 20 }))),
    await measure("commit with 3 read-model statements", () =>
      store.commit("rt/x", 1, [db.prepare("SELECT 1"), db.prepare("SELECT 2"), db.prepare("SELECT 3")]),
    ),
  ];
  await clear(db);
  return { title: "D1 round trips per operation", columns: ["operation", "round trips", "calls"], rows };
}

async function fill(db: D1Database, size: number): Promise<void> {
  await clear(db);
  await db
    .prepare(
      "INSERT INTO checkpoints (name, position) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) " +
        "SELECT printf('projection-%08d', i), i FROM n",
    )
    .bind(size)
    .run();
}

interface ListingCost {
  queries: number;
  rowsRead: number;
}

/** Keyset (the store) against OFFSET paging, in time and in rows read (what D1 bills). */
export async function listing(db: D1Database, scale: BenchScale): Promise<BenchTable> {
  const pageSize = 1000;
  const rows: (string | number)[][] = [];
  for (const size of scale.listingSizes) {
    await fill(db, size);
    const costs = new Map<string, ListingCost>();
    const metered = (label: string): D1Database =>
      interceptD1(db, async (_call, send) => {
        const result = (await send()) as D1Result | null;
        const cost = costs.get(label) ?? { queries: 0, rowsRead: 0 };
        cost.queries += 1;
        cost.rowsRead += result?.meta.rows_read ?? 0;
        costs.set(label, cost);
        return result;
      });
    const forget = (label: string): Promise<void> => {
      costs.delete(label);
      return Promise.resolve();
    };
    const keysetStore = new D1CheckpointStore(metered("keyset: names()"));
    const entriesStore = new D1CheckpointStore(metered("keyset: entries()"));
    const offsetDb = metered("OFFSET");
    const variants: Variant[] = [
      {
        label: "keyset: names()",
        setup: () => forget("keyset: names()"),
        run: async () => {
          let n = 0;
          for await (const name of keysetStore.names({ pageSize })) n += name.length > 0 ? 1 : 0;
          return n;
        },
      },
      {
        label: "keyset: entries()",
        setup: () => forget("keyset: entries()"),
        run: async () => {
          let n = 0;
          for await (const entry of entriesStore.entries({ pageSize })) n += entry.position > 0 ? 1 : 0;
          return n;
        },
      },
      {
        label: "OFFSET",
        setup: () => forget("OFFSET"),
        run: async () => {
          let n = 0;
          for (let offset = 0; ; offset += pageSize) {
            const { results } = await offsetDb
              .prepare("SELECT name FROM checkpoints ORDER BY name LIMIT ?1 OFFSET ?2")
              .bind(pageSize, offset)
              .all<{ name: string }>();
            n += results.length;
            if (results.length < pageSize) return n;
          }
        },
      },
    ];
    const stats = await interleave(variants, scale.listingRuns);
    const keysetRows = costs.get("keyset: names()")?.rowsRead ?? 1;
    for (const s of stats) {
      const cost = costs.get(s.label) ?? { queries: 0, rowsRead: 0 };
      rows.push([
        count(size),
        s.label,
        count(cost.queries),
        count(cost.rowsRead),
        `${count(median(s.millis))} (${count(Math.min(...s.millis))}–${count(Math.max(...s.millis))})`,
        ratio(cost.rowsRead / keysetRows),
      ]);
    }
  }
  await clear(db);
  return {
    title: "Listing every checkpoint: keyset against OFFSET",
    note: `pageSize ${pageSize}; rows read is the sum of D1's meta.rows_read over one full listing (what D1 bills); time in ms, median (min–max) of ${scale.listingRuns} runs.`,
    columns: ["checkpoints", "paging", "queries", "rows read", "ms", "rows read vs keyset"],
    rows,
  };
}

export async function resetBenchTables(db: D1Database): Promise<void> {
  await db.batch([
    db.prepare("CREATE TABLE IF NOT EXISTS bench_events (position INTEGER PRIMARY KEY, k TEXT NOT NULL, v INTEGER NOT NULL)"),
    db.prepare("CREATE TABLE IF NOT EXISTS bench_totals (k TEXT PRIMARY KEY, total INTEGER NOT NULL)"),
    db.prepare("DELETE FROM bench_totals"),
    db.prepare("DELETE FROM checkpoints"),
  ]);
}

export function addStatement(db: D1Client, k: string, v: number): D1PreparedStatement {
  return db
    .prepare("INSERT INTO bench_totals (k, total) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET total = total + excluded.total")
    .bind(k, v);
}

/** commit (read model + checkpoint in one batch) against two separate calls. */
export async function commitVersusSeparate(db: D1Database, scale: BenchScale): Promise<BenchTable> {
  const store = new D1CheckpointStore(db);
  await resetBenchTables(db);
  const variants: Variant[] = [
    {
      label: "two calls: read model, then save",
      setup: () => resetBenchTables(db),
      run: async () => {
        for (let i = 0; i < scale.ops; i++) {
          await addStatement(db, `k${i % 10}`, 1).run();
          await store.save("bench", i + 1);
        }
        return scale.ops;
      },
    },
    {
      label: "commit: one batch, with expected",
      setup: () => resetBenchTables(db),
      run: async () => {
        for (let i = 0; i < scale.ops; i++) {
          await store.commit("bench", i + 1, [addStatement(db, `k${i % 10}`, 1)], { expected: i === 0 ? null : i });
        }
        return scale.ops;
      },
    },
  ];
  const stats = await interleave(variants, scale.runs);
  const baseline = stats[0] as VariantStats;
  return {
    title: "commit against two separate calls",
    note: `${scale.ops} commits of one read-model statement each per run, ${scale.runs} runs interleaved. Two calls are also not atomic: a failure between them applies the event twice on retry.`,
    columns: ["variant", "commits/s median (min–max)", "time vs two calls"],
    rows: stats.map((s) => [s.label, rateWithSpread(s.rates), ratio(timeRatio(s, baseline))]),
  };
}

export interface BenchEvent {
  readonly position: number;
  readonly k: string;
  readonly v: number;
}

export async function readBenchEvents(db: D1Client, after: number, limit: number): Promise<BenchEvent[]> {
  const { results } = await db
    .prepare("SELECT position, k, v FROM bench_events WHERE position > ?1 ORDER BY position LIMIT ?2")
    .bind(after, limit)
    .all<BenchEvent>();
  return results;
}

/** Fills bench_events with `events` events, positions 1 to `events`. */
export async function fillBenchEvents(db: D1Database, events: number): Promise<void> {
  await db.prepare("DELETE FROM bench_events").run();
  const insert = db.prepare("INSERT INTO bench_events (position, k, v) VALUES (?1, ?2, 1)");
  for (let start = 1; start <= events; start += 100) {
    const batch = [];
    for (let p = start; p < start + 100 && p <= events; p++) batch.push(insert.bind(p, `k${p % 10}`));
    await db.batch(batch);
  }
}

/** ProjectionRunner events per second at several batch sizes, against saving after every event. */
export async function runnerThroughput(db: D1Database, scale: BenchScale): Promise<BenchTable> {
  await resetBenchTables(db);
  await fillBenchEvents(db, scale.events);
  const store = new D1CheckpointStore(db);
  const runner = (batchSize: number): Variant => ({
    label: `ProjectionRunner, batchSize ${batchSize}`,
    setup: () => resetBenchTables(db),
    run: async () => {
      const summary = await new ProjectionRunner<BenchEvent>({
        name: "bench",
        store,
        batchSize,
        readEvents: (after, limit) => readBenchEvents(db, after, limit),
        project: (events) => events.map((e) => addStatement(db, e.k, e.v)),
      }).run();
      return summary.events;
    },
  });
  const perEvent: Variant = {
    label: "save after every event",
    setup: () => resetBenchTables(db),
    run: async () => {
      let applied = 0;
      for (let after = 0; ; ) {
        const events = await readBenchEvents(db, after, 100);
        for (const event of events) {
          await addStatement(db, event.k, event.v).run();
          await store.save("bench", event.position);
          applied += 1;
          after = event.position;
        }
        if (events.length < 100) return applied;
      }
    },
  };
  const stats = await interleave([perEvent, runner(1), runner(10), runner(100)], scale.runs);
  const baseline = stats[0] as VariantStats;
  await resetBenchTables(db);
  return {
    title: "Projection throughput",
    note: `${count(scale.events)} events projected from scratch per run (one read-model upsert per event), ${scale.runs} runs interleaved. "save after every event" reads events 100 at a time, then writes the read model and saves the checkpoint per event (two round trips, not atomic).`,
    columns: ["variant", "events/s median (min–max)", "events/s vs save after every event"],
    rows: stats.map((s) => [s.label, rateWithSpread(s.rates), ratio(timeRatio(baseline, s))]),
  };
}
