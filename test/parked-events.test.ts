import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import {
  CheckpointRangeError,
  CheckpointTypeError,
  D1CheckpointStore,
  D1OperationError,
  ProjectionError,
  ProjectionRunner,
  type D1CheckpointStoreOptions,
  type D1Client,
  type EventErrorDecision,
} from "../src/index.js";
import { countD1, injectFaults } from "../src/testing.js";
import { collect } from "./support/helpers.js";
import { appendEvents, creditStatement, ledgerTotals, readLedger, resetLedger, type LedgerEvent } from "./support/ledger.js";

// Parked events: onError "park" sets an event aside in the same batch that
// moves the checkpoint past it; the store lists them; replay applies one and
// removes it in one batch, exactly once.

const fast: D1CheckpointStoreOptions = { retry: { baseDelayMs: 1, maxDelayMs: 2 } };

beforeEach(async () => {
  await resetLedger();
  await env.DB.prepare("DELETE FROM parked_events").run();
});

/** A ledger runner whose projection rejects the positions in `poison` (a set the test may change later). */
function runner(db: D1Client, poison: Set<number>, options: { query?: boolean; decision?: EventErrorDecision } = {}): ProjectionRunner<LedgerEvent> {
  const common = {
    name: "ledger",
    store: new D1CheckpointStore(db, fast),
    batchSize: 10,
    project: (events: readonly LedgerEvent[]) =>
      events.map((event) => {
        if (poison.has(event.position)) throw new Error(`cannot project event ${event.position}`);
        return creditStatement(event, db);
      }),
    onError: () => options.decision ?? "park",
  };
  return options.query === true
    ? new ProjectionRunner<LedgerEvent>({
        ...common,
        eventsQuery: (after, limit) =>
          db.prepare("SELECT position, account, amount FROM ledger_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
      })
    : new ProjectionRunner<LedgerEvent>({ ...common, readEvents: (after, limit) => readLedger(after, limit, db) });
}

const amount = (position: number): number => (position % 7) + 1; // as appendEvents credits

describe("parking", () => {
  it.each([false, true])("parks a rejected event in the batch that moves the checkpoint past it (eventsQuery: %s)", async (query) => {
    const sum = await appendEvents(25);
    const counted = countD1(env.DB);
    const summary = await runner(counted.db, new Set([6, 17]), { query }).run();
    expect(summary).toMatchObject({ to: 25, events: 23, parked: [6, 17], skipped: [], caughtUp: true });
    expect(await ledgerTotals()).toEqual({ sum: sum - amount(6) - amount(17), applied: 23 });
    // parked in the commit's own batch: no round trip of its own
    const parking = counted.calls.filter((c) => c.sql.some((sql) => sql.startsWith("INSERT INTO parked_events")));
    expect(parking).toHaveLength(2);
    expect(parking.every((c) => c.kind === "batch" && c.sql[0]?.includes("checkpoints"))).toBe(true);

    const parked = await collect(new D1CheckpointStore(env.DB).parked("ledger"));
    expect(parked.map(({ name, position, error }) => ({ name, position, error }))).toEqual([
      { name: "ledger", position: 6, error: "cannot project event 6" },
      { name: "ledger", position: 17, error: "cannot project event 17" },
    ]);
    for (const event of parked) expect(Math.abs(event.parkedAt.getTime() - Date.now())).toBeLessThan(60_000);
  });

  it("a batch that loses its conflict parks nothing", async () => {
    await appendEvents(5);
    const store = new D1CheckpointStore(env.DB);
    await store.save("ledger", 0);
    const overtaken = new ProjectionRunner<LedgerEvent>({
      name: "ledger",
      store,
      readEvents: async (after, limit) => {
        const events = await readLedger(after, limit);
        await store.save("ledger", 3); // another invocation gets ahead
        return events;
      },
      project: (events) =>
        events.map((event) => {
          if (event.position === 2) throw new Error("poison");
          return creditStatement(event);
        }),
      onError: () => "park",
    });
    await expect(overtaken.run()).resolves.toMatchObject({ conflict: true, parked: [], events: 0 });
    expect(await collect(store.parked("ledger"))).toEqual([]);
    expect((await ledgerTotals()).applied).toBe(0);
  });

  it("pages parked events by position, after a position", async () => {
    await appendEvents(30);
    await runner(env.DB, new Set([3, 9, 12, 20, 27])).run();
    const store = new D1CheckpointStore(env.DB);
    const counted = countD1(env.DB);
    const paged = await collect(new D1CheckpointStore(counted.db).parked("ledger", { pageSize: 2 }));
    expect(paged.map((event) => event.position)).toEqual([3, 9, 12, 20, 27]);
    expect(counted.calls).toHaveLength(3);
    expect((await collect(store.parked("ledger", { after: 12 }))).map((event) => event.position)).toEqual([20, 27]);
    expect(await collect(store.parked("other"))).toEqual([]);
  });

  it("stores a long error message cut to 1,000 characters", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.commit("ledger", 1, [], { parked: [{ position: 1, error: "x".repeat(5000) }] });
    const [event] = await collect(store.parked("ledger"));
    expect(event?.error).toHaveLength(1000);
    expect(event?.error.endsWith("…")).toBe(true);
  });

  it.each([
    ["not an array", { parked: "x" }, CheckpointTypeError, "options.parked"],
    // eslint-disable-next-line no-sparse-arrays -- a hole is the case under test
    ["a hole", { parked: [, { position: 1, error: "e" }] }, CheckpointTypeError, "options.parked[0]"],
    ["a position beyond the commit", { parked: [{ position: 6, error: "e" }] }, CheckpointRangeError, "options.parked[0].position"],
    ["a fractional position", { parked: [{ position: 1.5, error: "e" }] }, CheckpointRangeError, "options.parked[0].position"],
    ["an error that is not a string", { parked: [{ position: 1, error: new Error("e") }] }, CheckpointTypeError, "options.parked[0].error"],
  ])("rejects %s before any query", async (_label, options, type, argument) => {
    const counted = countD1(env.DB);
    const store = new D1CheckpointStore(counted.db);
    const error = await store.commit("ledger", 5, [], options as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(type);
    expect(error).toMatchObject({ argument });
    expect(counted.calls).toEqual([]);
  });
});

describe("replay", () => {
  it.each([false, true])("applies a parked event once and removes it, without moving the checkpoint (eventsQuery: %s)", async (query) => {
    const sum = await appendEvents(12);
    const poison = new Set([4]);
    await runner(env.DB, poison, { query }).run();
    poison.clear(); // the projection is fixed
    const counted = countD1(env.DB);
    await expect(runner(counted.db, poison, { query }).replay(4)).resolves.toBe(true);
    expect(counted.calls.filter((c) => c.kind === "batch")).toHaveLength(1); // guard, unpark and writes in one batch
    expect(await ledgerTotals()).toEqual({ sum, applied: 12 });
    expect(await collect(new D1CheckpointStore(env.DB).parked("ledger"))).toEqual([]);
    await expect(new D1CheckpointStore(env.DB).load("ledger")).resolves.toEqual({ position: 12, found: true });
    await expect(runner(env.DB, poison, { query }).replay(4)).resolves.toBe(false); // nothing parked: nothing applied
    expect(await ledgerTotals()).toEqual({ sum, applied: 12 });
  });

  it("of racing replays exactly one applies the event", async () => {
    const sum = await appendEvents(5);
    const poison = new Set([2]);
    await runner(env.DB, poison).run();
    poison.clear();
    const results = await Promise.all(Array.from({ length: 6 }, () => runner(env.DB, poison).replay(2)));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await ledgerTotals()).toEqual({ sum, applied: 5 });
  });

  it("an event the projection still rejects stays parked and the replay says why", async () => {
    await appendEvents(5);
    const poison = new Set([2]);
    await runner(env.DB, poison).run();
    const error = await runner(env.DB, poison).replay(2).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProjectionError);
    expect(error).toMatchObject({ position: 2, operation: "run" });
    expect((error as Error).message).toContain("cannot project event 2");
    expect((await collect(new D1CheckpointStore(env.DB).parked("ledger"))).map((e) => e.position)).toEqual([2]);
  });

  it("a position the log does not have is a ProjectionError, and bad positions are input errors", async () => {
    await appendEvents(3);
    await expect(runner(env.DB, new Set()).replay(99)).rejects.toBeInstanceOf(ProjectionError);
    await expect(runner(env.DB, new Set()).replay(-1)).rejects.toBeInstanceOf(CheckpointRangeError);
    await expect(runner(env.DB, new Set()).replay("2" as never)).rejects.toBeInstanceOf(CheckpointTypeError);
  });

  it("replay reads its event under the store's retry policy: a transient fault is retried, another failure keeps its cause", async () => {
    const sum = await appendEvents(5);
    const poison = new Set([2]);
    await runner(env.DB, poison, { query: true }).run();
    poison.clear();
    const faulty = injectFaults(env.DB);
    faulty.inject({ sql: /^SELECT position, account, amount FROM ledger_events/, times: 1 });
    await expect(runner(faulty.db, poison, { query: true }).replay(2)).resolves.toBe(true);
    expect(faulty.faults).toHaveLength(1);
    expect(await ledgerTotals()).toEqual({ sum, applied: 5 });

    await runner(env.DB, new Set([3]), { query: true }).run(); // nothing new: park another event by hand
    await env.DB.prepare("INSERT INTO parked_events (name, position, error, parked_at) VALUES ('ledger', 3, 'x', 0)").run();
    faulty.inject({ sql: /^SELECT position, account, amount FROM ledger_events/, times: 1, message: "D1_ERROR: no such table: ledger_events" });
    const error = await runner(faulty.db, poison, { query: true }).replay(3).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(D1OperationError);
    expect((error as D1OperationError).cause).toBeInstanceOf(Error);
    expect(((error as D1OperationError).cause as Error).message).toContain("no such table");
  });

  it("a readEvents that throws during a replay is a ProjectionError with the cause", async () => {
    await appendEvents(3);
    await env.DB.prepare("INSERT INTO parked_events (name, position, error, parked_at) VALUES ('ledger', 2, 'x', 0)").run();
    const cause = new Error("event API down");
    const failing = new ProjectionRunner<LedgerEvent>({
      name: "ledger",
      store: new D1CheckpointStore(env.DB),
      readEvents: () => Promise.reject(cause),
      project: (events) => events.map((event) => creditStatement(event)),
    });
    const error = await failing.replay(2).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProjectionError);
    expect(error).toMatchObject({ position: 2, cause });
  });

  it("a lost replay response is retried after a check: sent again when still parked, unknown when gone", async () => {
    const sum = await appendEvents(5);
    const poison = new Set([2, 3]);
    await runner(env.DB, poison).run();
    poison.clear();
    const before = injectFaults(env.DB);
    before.inject({ kinds: ["batch"], timing: "before", times: 1 });
    await expect(runner(before.db, poison).replay(2)).resolves.toBe(true); // checked: still parked, so sent again

    const after = injectFaults(env.DB);
    after.inject({ kinds: ["batch"], timing: "after", times: 1 });
    const error = await runner(after.db, poison).replay(3).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(D1OperationError);
    expect(error).toMatchObject({ outcomeUnknown: true }); // it landed, but a racing replay would look the same
    expect(await ledgerTotals()).toEqual({ sum, applied: 5 });
  });

  it("a reset takes the projection's parked events with it, so a rebuild cannot apply one twice", async () => {
    await appendEvents(5);
    const poison = new Set([2]);
    await runner(env.DB, poison).run();
    const store = new D1CheckpointStore(env.DB);
    await env.DB.batch([env.DB.prepare("DELETE FROM ledger_balances"), store.resetStatement("ledger")]);
    expect(await collect(store.parked("ledger"))).toEqual([]);
    poison.clear(); // fixed before the rebuild: the rebuild applies event 2 itself
    await runner(env.DB, poison).run();
    await expect(runner(env.DB, poison).replay(2)).resolves.toBe(false);
    expect((await ledgerTotals()).applied).toBe(5);
  });

  it("moving a checkpoint back (to rebuild) takes the parked events beyond it with it", async () => {
    await appendEvents(10);
    await runner(env.DB, new Set([3, 8])).run();
    const store = new D1CheckpointStore(env.DB);
    await store.save("ledger", 5);
    expect((await collect(store.parked("ledger"))).map((e) => e.position)).toEqual([3]);
  });

  it("a store that cannot park makes 'park' a ProjectionError, and replay an input error", async () => {
    await appendEvents(3);
    const d1 = new D1CheckpointStore(env.DB);
    const plain = { load: d1.load.bind(d1), commit: d1.commit.bind(d1) };
    const make = (): ProjectionRunner<LedgerEvent> =>
      new ProjectionRunner<LedgerEvent>({
        name: "ledger",
        store: plain as never,
        readEvents: (after, limit) => readLedger(after, limit),
        project: (events) =>
          events.map((event) => {
            if (event.position === 2) throw new Error("poison");
            return creditStatement(event);
          }),
        onError: () => "park",
      });
    await expect(make().run()).rejects.toMatchObject({ name: "ProjectionError", position: 2 });
    await expect(make().replay(2)).rejects.toBeInstanceOf(CheckpointTypeError);
    expect((await ledgerTotals()).applied).toBe(0);
  });
});
