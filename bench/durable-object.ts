// The Durable Object store against raw sql.exec of the same SQL, and against
// the D1 store. A Durable Object's SQLite is local and synchronous, and inside
// workerd the clock only moves across I/O, so each timed run is one call into
// the object (runInDurableObject) doing `ops` operations: the clock reads
// before and after that call, and the call's own overhead is the same for
// every variant of the run.
import { runInDurableObject } from "cloudflare:test";
import { saveSql, LOAD_SQL, UPSERT_SQL } from "../src/sql/checkpoints.js";
import { D1CheckpointStore, DurableObjectCheckpointStore, type SqlWrites } from "../src/index.js";
import { interleave, median, rateWithSpread, ratio, type BenchTable, type Variant, type VariantStats } from "./harness.js";
import { addStatement, resetBenchTables, type BenchScale } from "./suites.js";

const NAMES = 50;
const TOTALS = "CREATE TABLE IF NOT EXISTS bench_do_totals (k TEXT PRIMARY KEY, total INTEGER NOT NULL)";
const ADD = "INSERT INTO bench_do_totals (k, total) VALUES (?1, 1) ON CONFLICT (k) DO UPDATE SET total = total + 1";

type Operation = "save" | "load" | "commit";

/**
 * Operations per timed run inside the object: enough that the clock's
 * millisecond steps and the call's overhead wash out, few enough (tens of
 * milliseconds) that many short interleaved runs pair the variants closely in
 * time: this machine's speed drifts by tens of percent within seconds.
 */
const INSIDE_FACTOR = 50;

/** Runs of each variant, as a multiple of the scale's: short runs, many of them. */
const RUNS_FACTOR = 4;

/** `ops × INSIDE_FACTOR` operations inside the object, as one timed run. */
function inside<T extends Rpc.DurableObjectBranded | undefined>(
  stub: DurableObjectStub<T>,
  scale: BenchScale,
  each: (storage: DurableObjectStorage, store: DurableObjectCheckpointStore, i: number) => unknown,
): () => Promise<number> {
  const ops = scale.ops * INSIDE_FACTOR;
  return () =>
    runInDurableObject(stub, async (_instance, state) => {
      const store = new DurableObjectCheckpointStore(state.storage);
      for (let i = 0; i < ops; i++) await each(state.storage, store, i);
      return ops;
    });
}

/** The median over runs of (variant time per operation / baseline time per operation in the same run). */
function perOperationRatio(variant: VariantStats, baseline: VariantStats): number {
  return median(variant.rates.map((rate, run) => (baseline.rates[run] ?? rate) / rate));
}

/** The read-model write of a store commit, made once, as a projection makes one per batch. */
const addStore: SqlWrites = (sql) => {
  sql.exec(ADD, "store");
};

/** save, load and commit on a Durable Object's SQLite: the store, raw `sql.exec`, and the D1 store for comparison. */
export async function durableObjectOperations<T extends Rpc.DurableObjectBranded | undefined>(
  namespace: DurableObjectNamespace<T>,
  db: D1Database,
  scale: BenchScale,
): Promise<BenchTable> {
  const stub = namespace.get(namespace.idFromName("bench"));
  await runInDurableObject(stub, (_instance, state) => {
    new DurableObjectCheckpointStore(state.storage); // the table
    state.storage.sql.exec(TOTALS);
    for (let i = 0; i < NAMES; i++) state.storage.sql.exec(UPSERT_SQL, `bench/${i}`, i);
  });
  await resetBenchTables(db);
  const d1 = new D1CheckpointStore(db);
  for (let i = 0; i < NAMES; i++) await d1.save(`bench/${i}`, i);
  const rows: (string | number)[][] = [];
  const positions = new Map<string, number>();
  const next = (label: string): number => {
    const position = (positions.get(label) ?? 0) + 1;
    positions.set(label, position);
    return position;
  };
  for (const operation of ["save", "load", "commit"] as const satisfies readonly Operation[]) {
    const raw: Variant = {
      label: "raw sql.exec",
      run: inside(stub, scale, (storage, _store, i) => {
        const name = `bench/${i % NAMES}`;
        if (operation === "save") return storage.sql.exec(UPSERT_SQL, name, i).toArray();
        if (operation === "load") return storage.sql.exec(LOAD_SQL, name).toArray()[0];
        const position = next("raw");
        const { sql, bindings } = saveSql("commits/raw", position, position - 1);
        storage.transactionSync(() => {
          storage.sql.exec(sql, ...bindings);
          storage.sql.exec(ADD, "raw");
        });
        return undefined;
      }),
    };
    const store: Variant = {
      label: "DurableObjectCheckpointStore",
      run: inside(stub, scale, (_storage, doStore, i) => {
        const name = `bench/${i % NAMES}`;
        if (operation === "save") return doStore.save(name, i);
        if (operation === "load") return doStore.load(name);
        const position = next("store");
        return doStore.commit("commits/store", position, addStore, { expected: position - 1 });
      }),
    };
    const viaD1: Variant = {
      label: "D1CheckpointStore (local D1)",
      run: async () => {
        for (let i = 0; i < scale.ops; i++) {
          const name = `bench/${i % NAMES}`;
          if (operation === "save") await d1.save(name, i);
          else if (operation === "load") await d1.load(name);
          else {
            const position = next("d1");
            await d1.commit("commits/d1", position, [addStatement(db, "d1", 1)], { expected: position - 1 });
          }
        }
        return scale.ops;
      },
    };
    if (operation === "commit") {
      await runInDurableObject(stub, (_instance, state) => {
        for (const label of ["raw", "store"]) state.storage.sql.exec(UPSERT_SQL, `commits/${label}`, 0);
      });
      await d1.save("commits/d1", 0);
      positions.clear();
    }
    const stats = await interleave([raw, store, viaD1], scale.runs * RUNS_FACTOR + 1);
    const baseline = stats[0] as VariantStats;
    for (const s of stats) rows.push([operation, s.label, rateWithSpread(s.rates), ratio(perOperationRatio(s, baseline))]);
  }
  await resetBenchTables(db);
  return {
    title: "Durable Object store",
    note:
      `${scale.ops * INSIDE_FACTOR} sequential operations per run inside one Durable Object (one runInDurableObject call per run, timed from outside: ` +
      `inside workerd the clock only moves across I/O), ${scale.ops} per run through the D1 store; ${scale.runs * RUNS_FACTOR + 1} short runs interleaved; ratio = the median over runs of ` +
      `(variant time per operation / raw sql.exec time per operation in the same run). A commit writes one read-model row with the checkpoint, in one transaction. ` +
      `The D1 store's figures are local D1 (another process, not the network): production D1 adds a network round trip to each.`,
    columns: ["operation", "variant", "ops/s median (min–max)", "time per operation vs raw sql.exec"],
    rows,
  };
}
