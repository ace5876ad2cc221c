import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { D1CheckpointStore, ProjectionRunner, type D1Client } from "../src/index.js";
import { countD1, injectFaults } from "../src/testing.js";
import { appendEvents, creditStatement, ledgerTotals, resetLedger, type LedgerEvent } from "./support/ledger.js";

// ProjectionRunner with eventsQuery: the next events ride in the commit's
// batch, and the first read rides with the load when the position is known.

beforeEach(() => resetLedger());

function eventsQuery(db: D1Client) {
  return (after: number, limit: number): D1PreparedStatement =>
    db
      .prepare("SELECT position, account, amount FROM ledger_events WHERE position > ?1 ORDER BY position LIMIT ?2")
      .bind(after, limit);
}

function pipelinedRunner(db: D1Client, batchSize: number, store = new D1CheckpointStore(db)): ProjectionRunner<LedgerEvent> {
  return new ProjectionRunner<LedgerEvent>({
    name: "ledger",
    store,
    batchSize,
    eventsQuery: eventsQuery(db),
    project: (events) => events.map((event) => creditStatement(event, db)),
  });
}

describe("ProjectionRunner with eventsQuery", () => {
  it("projects 1,000 events in 12 round trips cold, 11 warm, and 1 when idle", async () => {
    const counted = countD1(env.DB);
    let sum = await appendEvents(1000);
    await expect(pipelinedRunner(counted.db, 100).run()).resolves.toMatchObject({ to: 1000, events: 1000, batches: 10, caughtUp: true });
    expect(counted.calls).toHaveLength(12); // load, read, 10 commits each carrying the next read
    expect(counted.calls.map((c) => c.kind)).toEqual(["all", "all", ...Array<string>(10).fill("batch")]);
    expect(counted.calls[2]?.sql).toHaveLength(1 + 100 + 1); // checkpoint, statements, next events

    counted.clear();
    await expect(pipelinedRunner(counted.db, 100).run()).resolves.toMatchObject({ from: 1000, to: 1000, batches: 0, caughtUp: true });
    expect(counted.calls.map((c) => c.kind)).toEqual(["batch"]); // load and read in one round trip
    expect(counted.calls[0]?.sql).toHaveLength(2);

    sum += await appendEvents(1000);
    counted.clear();
    await expect(pipelinedRunner(counted.db, 100).run()).resolves.toMatchObject({ from: 1000, to: 2000, events: 1000 });
    expect(counted.calls).toHaveLength(11);
    expect(await ledgerTotals()).toEqual({ sum, applied: 2000 });
  });

  it("a short batch ends the run without a trailing read, and maxBatches stops before one", async () => {
    const counted = countD1(env.DB);
    await appendEvents(250);
    await pipelinedRunner(counted.db, 100).run({ maxBatches: 2 });
    const batches = counted.calls.filter((c) => c.kind === "batch");
    expect(batches.map((c) => c.sql.length)).toEqual([1 + 100 + 1, 1 + 100]); // the last allowed batch reads nothing
    counted.clear();
    await expect(pipelinedRunner(counted.db, 100).run()).resolves.toMatchObject({ from: 200, to: 250, caughtUp: true });
    expect(counted.calls.map((c) => c.sql.length)).toEqual([2, 1 + 50]); // load+read, then the short batch alone
  });

  it("a wrong guess costs a second round trip, never a wrong event", async () => {
    const counted = countD1(env.DB);
    await appendEvents(30);
    await pipelinedRunner(counted.db, 10).run({ maxBatches: 1 }); // this isolate saw position 10
    await pipelinedRunner(env.DB, 10).run({ maxBatches: 1 }); // another binding object moves it to 20
    counted.clear();
    await expect(pipelinedRunner(counted.db, 10).run()).resolves.toMatchObject({ from: 20, to: 30, events: 10 });
    expect(counted.calls.map((c) => c.kind).slice(0, 2)).toEqual(["batch", "all"]); // guessed 10, re-read after 20
    expect((await ledgerTotals()).applied).toBe(30);
  });

  it("overlapping runners apply every event exactly once", async () => {
    let expected = 0;
    let conflicts = 0;
    for (let round = 0; round < 5; round++) {
      expected += await appendEvents(60);
      const summaries = await Promise.all(Array.from({ length: 5 }, (_, i) => pipelinedRunner(env.DB, 4 + i).run()));
      conflicts += summaries.filter((s) => s.conflict).length;
      await pipelinedRunner(env.DB, 100).run();
      expect(await ledgerTotals()).toEqual({ sum: expected, applied: 60 * (round + 1) });
    }
    expect(conflicts).toBeGreaterThan(0);
  });

  it("a lost commit response is checked, and the next events are read alone", async () => {
    const faulty = injectFaults(env.DB);
    const sum = await appendEvents(30);
    faulty.inject({ kinds: ["batch"], timing: "after", skip: 1 }); // the second commit lands, its response is lost
    const store = new D1CheckpointStore(faulty.db, { retry: { baseDelayMs: 1, maxDelayMs: 1 } });
    await expect(pipelinedRunner(faulty.db, 10, store).run()).resolves.toMatchObject({ to: 30, events: 30, batches: 3 });
    expect(await ledgerTotals()).toEqual({ sum, applied: 30 });
    expect(faulty.faults).toHaveLength(1);
  });
});
