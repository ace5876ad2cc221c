// Overlapping runners, as the example starts them: every append starts a
// projection run in the background (ctx.waitUntil), and appends come from many
// clients at once. Counts the D1 queries (statements sent) and round trips
// the runners spend per 1,000 appended events, against the same appends made
// one after another, each followed by its run.
import { D1CheckpointStore, ProjectionRunner, type RunSummary } from "../src/index.js";
import { interceptD1 } from "../src/testing.js";
import { count, median, ratio, type BenchTable } from "./harness.js";
import { addStatement, readBenchEvents, resetBenchTables, type BenchEvent, type BenchScale } from "./suites.js";

const APPENDERS = 16;
const NAME = "bench";

interface Counts {
  queries: number;
  roundTrips: number;
  conflicts: number;
  yielded: number;
}

type Source = "readEvents" | "eventsQuery" | "eventsQuery with lease";

function runnerOn(db: D1Database, source: Source): ProjectionRunner<BenchEvent> {
  const common = {
    name: NAME,
    store: new D1CheckpointStore(db),
    batchSize: 100,
    project: (events: readonly BenchEvent[]) => events.map((e) => addStatement(db, e.k, e.v)),
  };
  return source === "readEvents"
    ? new ProjectionRunner<BenchEvent>({ ...common, readEvents: (after, limit) => readBenchEvents(db, after, limit) })
    : new ProjectionRunner<BenchEvent>({
        ...common,
        lease: source === "eventsQuery with lease",
        eventsQuery: (after, limit) =>
          db.prepare("SELECT position, k, v FROM bench_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
      });
}

/** Appends `events` events, one per append, from `appenders` clients at once; each append starts a run it does not wait for. */
async function appendAndProject(db: D1Database, events: number, appenders: number, source: Source): Promise<Counts> {
  const counts: Counts = { queries: 0, roundTrips: 0, conflicts: 0, yielded: 0 };
  const counted = interceptD1(db, (call, send) => {
    counts.roundTrips += 1;
    counts.queries += call.sql.length;
    return send();
  });
  const runner = runnerOn(counted, source);
  await runner.run(); // the isolate has seen the projection before
  counts.queries = counts.roundTrips = 0;
  const insert = db.prepare("INSERT INTO bench_events (k, v) VALUES (?1, 1)");
  const background: Promise<void>[] = [];
  let next = 0;
  const client = async (): Promise<void> => {
    while (next < events) {
      const i = next++;
      await insert.bind(`k${i % 10}`).run();
      const run = runnerOn(counted, source).run(); // a fresh runner per request, as in the example
      const tally = (summary: RunSummary): void => {
        if (summary.conflict) counts.conflicts += 1;
        if (summary.yielded) counts.yielded += 1;
      };
      if (appenders === 1) tally(await run);
      else background.push(run.then(tally));
    }
  };
  await Promise.all(Array.from({ length: appenders }, () => client()));
  await Promise.all(background);
  await runner.run(); // whatever the race left: a catch-up, counted too
  const totals = await db.prepare("SELECT COALESCE(SUM(total), 0) AS n FROM bench_totals").first<{ n: number }>();
  if (totals?.n !== events) throw new Error(`exactly-once broken: ${String(totals?.n)} applied of ${events}`);
  return counts;
}

/** Queries and round trips per 1,000 appended events: 16 overlapping appenders against one sequential appender. */
export async function overlappingRunners(db: D1Database, scale: BenchScale): Promise<BenchTable> {
  const rows: (string | number)[][] = [];
  const measure = async (appenders: number, source: Source): Promise<Counts[]> => {
    const all: Counts[] = [];
    for (let run = 0; run < 3; run++) {
      await resetBenchTables(db);
      await db.prepare("DELETE FROM bench_events").run();
      await db.prepare("DELETE FROM projection_leases").run();
      all.push(await appendAndProject(db, scale.events, appenders, source));
    }
    return all;
  };
  const per1000 = (runs: Counts[], key: keyof Counts): number => median(runs.map((c) => (c[key] * 1000) / scale.events));
  // The yardstick: one sequential runner without a lease, per event source (the lease rows compare with eventsQuery's).
  const bases = new Map<Source, number>();
  for (const source of ["readEvents", "eventsQuery", "eventsQuery with lease"] as const) {
    const sequential = await measure(1, source);
    const overlapping = await measure(APPENDERS, source);
    if (source !== "eventsQuery with lease") bases.set(source, per1000(sequential, "queries"));
    const base = bases.get(source === "eventsQuery with lease" ? "eventsQuery" : source) ?? 1;
    for (const [label, runs] of [
      ["1 appender, each run awaited", sequential],
      [`${APPENDERS} appenders, runs in the background`, overlapping],
    ] as const) {
      rows.push([
        source,
        label,
        count(per1000(runs, "queries")),
        count(per1000(runs, "roundTrips")),
        count(per1000(runs, "conflicts")),
        count(per1000(runs, "yielded")),
        ratio(per1000(runs, "queries") / base),
      ]);
    }
  }
  await resetBenchTables(db);
  await db.prepare("DELETE FROM bench_events").run();
  return {
    title: "Overlapping runners",
    note:
      `${count(scale.events)} events appended one per request; every append starts a ProjectionRunner (batch size 100, a fresh runner per request) ` +
      `that the request does not wait for, as the example does with ctx.waitUntil; then one catch-up run. Queries are statements sent to D1 ` +
      `(what the per-invocation limit counts), by the runners only; medians of 3 runs. Every run ends with each event applied exactly once. ` +
      `"with lease": the runner option lease (a run claims a lease in its load's round trip; a run that finds another's stops there and notes pending work, which the holder picks up before letting go); ` +
      `its ratio is against the sequential eventsQuery runner without a lease.`,
    columns: [
      "event source",
      "appends",
      "queries per 1,000 events",
      "round trips per 1,000 events",
      "runs that lost a conflict per 1,000 events",
      "runs that yielded to a lease per 1,000 events",
      "queries vs 1 sequential runner without a lease",
    ],
    rows,
  };
}
