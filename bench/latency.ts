// Projection throughput when every round trip costs network latency, as on
// production D1: a wrapper around the local binding waits a fixed time before
// each call (inside workerd the clock moves across that wait, so the timings
// are bound by round trips, as they are in production).
import { COMPARE_AND_SET_SQL, INSERT_NEW_SQL, LOAD_SQL } from "../src/sql/checkpoints.js";
import { D1CheckpointStore, ProjectionRunner } from "../src/index.js";
import { interceptD1 } from "../src/testing.js";
import { count, interleave, rateWithSpread, ratio, timeRatio, type BenchTable, type Variant, type VariantStats } from "./harness.js";
import { addStatement, fillBenchEvents, readBenchEvents, resetBenchTables, type BenchEvent, type BenchScale } from "./suites.js";

const BATCH = 100;
const NAME = "bench";

function eventsQuery(db: D1Database, after: number, limit: number): D1PreparedStatement {
  return db.prepare("SELECT position, k, v FROM bench_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit);
}

/**
 * A hand-written loop doing what the eventsQuery runner does, with raw D1
 * calls: load and first read in one batch, then per batch one batch() of the
 * conditional checkpoint save, the read-model statements and the next read.
 */
async function pipelinedByHand(db: D1Database, known: number): Promise<number> {
  const [loaded, first] = await db.batch<{ position?: number } & BenchEvent>([
    db.prepare(LOAD_SQL).bind(NAME),
    eventsQuery(db, known, BATCH),
  ]);
  const stored = loaded?.results[0]?.position;
  let expected: number | null = stored ?? null;
  let events = (stored ?? 0) === known ? (first?.results ?? []) : await readBenchEvents(db, stored ?? 0, BATCH);
  let applied = 0;
  for (;;) {
    const last = events.at(-1);
    if (last === undefined) return applied;
    const checkpoint =
      expected === null
        ? db.prepare(INSERT_NEW_SQL).bind(NAME, last.position)
        : db.prepare(COMPARE_AND_SET_SQL).bind(NAME, last.position, expected);
    const statements = events.map((e) => addStatement(db, e.k, e.v));
    const full = events.length === BATCH;
    const results = await db.batch<BenchEvent>(full ? [checkpoint, ...statements, eventsQuery(db, last.position, BATCH)] : [checkpoint, ...statements]);
    applied += events.length;
    expected = last.position;
    if (!full) return applied;
    events = results.at(-1)?.results ?? [];
  }
}

/** Per-event saves, the readEvents runner, the eventsQuery runner and the hand-written loop, each round trip delayed. */
export async function projectionWithLatency(db: D1Database, scale: BenchScale): Promise<BenchTable> {
  let roundTrips = 0;
  const slow = interceptD1(db, async (_call, send) => {
    roundTrips += 1;
    await new Promise((resolve) => setTimeout(resolve, scale.latencyMs));
    return send();
  });
  await resetBenchTables(db);
  await fillBenchEvents(db, scale.events);
  const store = new D1CheckpointStore(slow);
  const trips = new Map<string, number>();
  const measured = (label: string, run: () => Promise<number>): Variant => ({
    label,
    setup: async () => {
      await resetBenchTables(db);
      await store.load(NAME); // this isolate has seen the projection (a runner that ran before): position 0
    },
    run: async () => {
      const before = roundTrips;
      const events = await run();
      trips.set(label, ((roundTrips - before) * 1000) / Math.max(events, 1));
      return events;
    },
  });
  const common = { name: NAME, store, batchSize: BATCH, project: (events: readonly BenchEvent[]) => events.map((e) => addStatement(slow, e.k, e.v)) };
  const readEventsRunner = new ProjectionRunner<BenchEvent>({ ...common, readEvents: (after, limit) => readBenchEvents(slow, after, limit) });
  const eventsQueryRunner = new ProjectionRunner<BenchEvent>({ ...common, eventsQuery: (after, limit) => eventsQuery(slow, after, limit) });
  const variants: Variant[] = [
    measured("save after every event", async () => {
      let applied = 0;
      for (let after = 0; ; ) {
        const events = await readBenchEvents(slow, after, BATCH);
        for (const event of events) {
          await addStatement(slow, event.k, event.v).run();
          await store.save(NAME, event.position);
          applied += 1;
          after = event.position;
        }
        if (events.length < BATCH) return applied;
      }
    }),
    measured(`ProjectionRunner, readEvents, batchSize ${BATCH}`, async () => (await readEventsRunner.run()).events),
    measured(`ProjectionRunner, eventsQuery, batchSize ${BATCH}`, async () => (await eventsQueryRunner.run()).events),
    measured("hand-written pipelined loop (raw D1)", () => pipelinedByHand(slow, 0)),
  ];
  const stats = await interleave(variants, scale.runs);
  const idle = async (runner: ProjectionRunner<BenchEvent>): Promise<number> => {
    const before = roundTrips;
    await runner.run();
    return roundTrips - before;
  };
  await resetBenchTables(db);
  await store.load(NAME);
  await eventsQueryRunner.run(); // caught up; now idle runs
  const idleTrips = { readEvents: await idle(readEventsRunner), eventsQuery: await idle(eventsQueryRunner) };
  await resetBenchTables(db);
  const byHand = stats[3] as VariantStats;
  const readEvents = stats[1] as VariantStats;
  return {
    title: "Projection with network latency",
    note:
      `Every D1 call through a wrapper that waits ${scale.latencyMs} ms before sending it (a stand-in for the Worker-to-D1 round trip). ` +
      `${count(scale.events)} events projected from scratch per run (one read-model upsert per event), ${scale.runs} runs interleaved; ` +
      `each runner has run before in the isolate, as a cron or waitUntil runner has. ` +
      `An idle run (nothing new) costs ${idleTrips.eventsQuery} round trip with eventsQuery and ${idleTrips.readEvents} with readEvents.`,
    columns: ["variant", "round trips per 1,000 events", "events/s median (min–max)", "time vs hand-written loop", "events/s vs readEvents runner"],
    rows: stats.map((s) => [
      s.label,
      count(trips.get(s.label) ?? 0),
      rateWithSpread(s.rates),
      ratio(timeRatio(s, byHand)),
      ratio(timeRatio(readEvents, s)),
    ]),
  };
}
