import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { countD1 } from "../src/testing/intercept.js";
import {
  CheckpointRangeError,
  CheckpointTypeError,
  D1CheckpointStore,
  ProjectionError,
  ProjectionRunner,
  type EventErrorDecision,
} from "../src/index.js";
import {
  appendEvents,
  creditStatement,
  ledgerRunner,
  ledgerTotals,
  overtakenReader,
  readLedger,
  resetLedger,
  type LedgerEvent,
} from "./support/ledger.js";

beforeEach(() => resetLedger());

describe("ProjectionRunner", () => {
  it("projects every event once and reports what it did", async () => {
    const sum = await appendEvents(25);
    const store = new D1CheckpointStore(env.DB);
    const summary = await ledgerRunner(store, 10).run();
    expect(summary).toEqual({
      name: "ledger",
      from: 0,
      to: 25,
      events: 25,
      skipped: [],
      parked: [],
      batches: 3,
      conflict: false,
      caughtUp: true,
      yielded: false,
      ended: "caughtUp",
      queries: 1 + 3 + (11 + 11 + 6), // the load, 3 reads, 3 batches of a checkpoint and one statement per event
      // 5 accounts inserted (a row and its index entry each), 20 updated; the checkpoint created (4), then moved twice (2 each).
      rowsWritten: 5 * 2 + 20 + 4 + 2 * 2,
      ownRowsWritten: 4 + 2 * 2,
      // readEvents reads outside the store: its rows are not counted.
      rowsRead: expect.any(Number) as number,
      ownRowsRead: expect.any(Number) as number,
    });
    expect(await ledgerTotals()).toEqual({ sum, applied: 25 });
    await expect(store.load("ledger")).resolves.toEqual({ position: 25, found: true });
  });

  it("resumes where the last run stopped", async () => {
    const first = await appendEvents(12);
    const store = new D1CheckpointStore(env.DB);
    const runner = ledgerRunner(store, 5);
    await expect(runner.run({ maxBatches: 1 })).resolves.toMatchObject({ from: 0, to: 5, batches: 1, caughtUp: false });
    await expect(runner.run()).resolves.toMatchObject({ from: 5, to: 12, events: 7, caughtUp: true });
    const second = await appendEvents(3);
    await expect(runner.run()).resolves.toMatchObject({ from: 12, to: 15, events: 3 });
    await expect(runner.run()).resolves.toMatchObject({ from: 15, to: 15, events: 0, batches: 0, caughtUp: true });
    expect(await ledgerTotals()).toEqual({ sum: first + second, applied: 15 });
  });

  it("makes one load, then one read and one batch per batch of events", async () => {
    await appendEvents(20);
    const counted = countD1(env.DB);
    const store = new D1CheckpointStore(counted.db);
    const runner = new ProjectionRunner<LedgerEvent>({
      name: "ledger",
      store,
      batchSize: 10,
      readEvents: (after, limit) => readLedger(after, limit, counted.db),
      project: (events) => events.map((e) => creditStatement(e)),
    });
    await runner.run();
    expect(counted.calls.map((c) => c.kind)).toEqual(["all", "all", "batch", "all", "batch", "all"]);
    expect(counted.calls[2]?.sql).toHaveLength(11);
  });

  it("stops on a conflict without applying anything, when another run got ahead", async () => {
    await appendEvents(10);
    const store = new D1CheckpointStore(env.DB);
    const runner = new ProjectionRunner<LedgerEvent>({
      name: "ledger",
      store,
      batchSize: 5,
      readEvents: overtakenReader(store, 5),
      project: (events) => events.map((e) => creditStatement(e)),
    });
    await expect(runner.run()).resolves.toMatchObject({ from: 0, to: 0, events: 0, conflict: true, caughtUp: false });
    expect((await ledgerTotals()).applied).toBe(5);
    await expect(store.load("ledger")).resolves.toEqual({ position: 5, found: true });
  });

  it("overlapping runners apply every event exactly once", async () => {
    const store = new D1CheckpointStore(env.DB);
    let expectedSum = 0;
    let conflicts = 0;
    for (let round = 0; round < 6; round++) {
      expectedSum += await appendEvents(40);
      const runners = Array.from({ length: 5 }, (_, i) => ledgerRunner(new D1CheckpointStore(env.DB), 3 + i));
      const summaries = await Promise.all(runners.map((r) => r.run()));
      conflicts += summaries.filter((s) => s.conflict).length;
      await ledgerRunner(store, 50).run(); // whatever the race left, a catch-up run finishes
      expect(await ledgerTotals()).toEqual({ sum: expectedSum, applied: 40 * (round + 1) });
      await expect(store.load("ledger")).resolves.toEqual({ position: 40 * (round + 1), found: true });
    }
    expect(conflicts).toBeGreaterThan(0);
  });

  describe("an event project rejects", () => {
    const poisoned = (onError?: EventErrorDecision) =>
      new ProjectionRunner<LedgerEvent>({
        name: "ledger",
        store: new D1CheckpointStore(env.DB),
        batchSize: 4,
        readEvents: (after, limit) => readLedger(after, limit),
        project: (events) =>
          events.map((e) => {
            if (e.position === 6) throw new Error("cannot project event 6");
            return creditStatement(e);
          }),
        onError: onError === undefined ? undefined : () => onError,
      });

    it("stops the run with an error naming its position; earlier batches stay", async () => {
      await appendEvents(10);
      const error = await poisoned().run().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProjectionError);
      expect(error).toMatchObject({ position: 6, checkpoint: "ledger", operation: "run" });
      expect((error as Error).message).toContain("position 6");
      expect(((error as Error).cause as Error).message).toBe("cannot project event 6");
      await expect(new D1CheckpointStore(env.DB).load("ledger")).resolves.toEqual({ position: 4, found: true });
      expect((await ledgerTotals()).applied).toBe(4);
    });

    it("onError 'stop' stops the same way", async () => {
      await appendEvents(10);
      await expect(poisoned("stop").run()).rejects.toMatchObject({ position: 6 });
    });

    it("onError 'skip' leaves the event out and moves on", async () => {
      const sum = await appendEvents(10);
      const summary = await poisoned("skip").run();
      expect(summary).toMatchObject({ to: 10, events: 9, skipped: [6], caughtUp: true });
      expect(await ledgerTotals()).toEqual({ sum: sum - ((6 % 7) + 1), applied: 9 });
    });
  });

  it("rejects events out of order or at or before the checkpoint", async () => {
    const store = new D1CheckpointStore(env.DB);
    for (const events of [
      [{ position: 2 }, { position: 1 }],
      [{ position: 0 }],
      [{ position: 1.5 }],
      [{ position: 3 }, { position: 3 }],
    ]) {
      const runner = new ProjectionRunner({ name: "ledger", store, readEvents: () => Promise.resolve(events), project: () => [] });
      await expect(runner.run()).rejects.toBeInstanceOf(ProjectionError);
    }
    await expect(store.load("ledger")).resolves.toEqual({ position: 0, found: false });
  });

  it("checks its configuration and run options", async () => {
    const store = new D1CheckpointStore(env.DB);
    const base = { name: "ledger", store, readEvents: () => Promise.resolve([]), project: () => [] };
    expect(() => new ProjectionRunner({ ...base, name: "" })).toThrow(CheckpointRangeError);
    expect(() => new ProjectionRunner({ ...base, batchSize: 0 })).toThrow(CheckpointRangeError);
    expect(() => new ProjectionRunner({ ...base, batchSize: 10_001 })).toThrow(CheckpointRangeError);
    expect(() => new ProjectionRunner({ ...base, project: "x" as never })).toThrow(CheckpointTypeError);
    const runner = new ProjectionRunner(base);
    await expect(runner.run({ maxBatches: 0 })).rejects.toBeInstanceOf(CheckpointRangeError);
    await expect(runner.run({ signal: AbortSignal.abort(new Error("stop")) })).rejects.toThrow("stop");
  });
});
