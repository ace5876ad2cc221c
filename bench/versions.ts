// What a version fence costs: the same projection run unversioned, as a
// versioned live runner (with and without version records), and as a rebuild
// (checkpoint "bench@2"), side by side. The fence is folded into the
// checkpoint statement, so it adds no statement per batch; a versioned run
// reads its version's state once.
import { D1CheckpointStore, ProjectionRunner } from "../src/index.js";
import { count, interleave, rateWithSpread, ratio, timeRatio, type BenchTable, type Variant, type VariantStats } from "./harness.js";
import { addStatement, fillBenchEvents, resetBenchTables, type BenchEvent, type BenchScale } from "./suites.js";

const BATCH = 100;

type Records = "none" | "rebuilding";

/** Version fences: a versioned runner and a rebuild against an unversioned runner. */
export async function versionFences(db: D1Database, scale: BenchScale): Promise<BenchTable> {
  await resetBenchTables(db);
  await fillBenchEvents(db, scale.events);
  const store = new D1CheckpointStore(db);
  const queries = new Map<string, number>();
  const setUp = async (records: Records): Promise<void> => {
    await resetBenchTables(db);
    await db.batch([
      db.prepare("DELETE FROM projection_versions WHERE name = 'bench'"),
      ...(records === "none"
        ? []
        : [
            db.prepare(`INSERT INTO projection_versions (name, version, state, tables, started_at) VALUES ('bench', 1, 'live', '{"bench_totals":"bench_totals"}', 0)`),
            db.prepare(`INSERT INTO projection_versions (name, version, state, tables, started_at) VALUES ('bench', 2, 'building', '{"bench_totals":"bench_totals_v2"}', 0)`),
          ]),
    ]);
  };
  const variant = (label: string, records: Records, version: number | undefined): Variant => ({
    label,
    setup: () => setUp(records),
    run: async () => {
      const summary = await new ProjectionRunner<BenchEvent>({
        name: "bench",
        version,
        store,
        batchSize: BATCH,
        eventsQuery: (after, limit) => db.prepare("SELECT position, k, v FROM bench_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
        project: (events) => events.map((e) => addStatement(db, e.k, e.v)),
      }).run();
      queries.set(label, summary.queries);
      return summary.events;
    },
  });
  const variants = [
    variant("unversioned", "none", undefined),
    variant("version 1, live, no version records", "none", 1),
    variant("version 1, live, while version 2 is rebuilt", "rebuilding", 1),
    variant("version 2, the rebuild (checkpoint bench@2)", "rebuilding", 2),
  ];
  const stats = await interleave(variants, scale.runs);
  const baseline = stats[0] as VariantStats;
  await setUp("none"); // the suites after this one see no version records
  return {
    title: "Version fences",
    note: `${count(scale.events)} events projected from scratch per run with eventsQuery, batchSize ${BATCH}, one read-model upsert per event, ${scale.runs} runs interleaved. A versioned runner's commits carry its fence inside the checkpoint statement; it reads its version's state once per run.`,
    columns: ["runner", "events/s median (min–max)", "time vs unversioned", "queries per run"],
    rows: stats.map((s) => [s.label, rateWithSpread(s.rates), ratio(timeRatio(s, baseline)), count(queries.get(s.label) ?? 0)]),
  };
}
