import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import {
  CheckpointConflictError,
  D1CheckpointStore,
  D1OperationError,
  ProjectionError,
  ProjectionRunner,
  type D1CheckpointStoreOptions,
} from "../src/index.js";
import { injectFaults, interceptD1, NETWORK_CONNECTION_LOST } from "../src/testing.js";
import { storedRows } from "./support/helpers.js";
import {
  appendEvents,
  creditStatement,
  ledgerTotals,
  overtakenReader,
  readLedger,
  resetLedger,
  type LedgerEvent,
} from "./support/ledger.js";

// What the caller is told, in the rare fault paths: never that a write did not
// happen when it may have, never a conflict for a batch that was applied.
const fast: D1CheckpointStoreOptions = { retry: { baseDelayMs: 1, maxDelayMs: 2 } };
const OVERLOADED = "D1_ERROR: D1 DB is overloaded. Requests queued for too long.";

beforeEach(() => resetLedger());

async function seedCheckpoint(name: string, position: number): Promise<void> {
  await env.DB.prepare("INSERT INTO checkpoints (name, position) VALUES (?1, ?2)").bind(name, position).run();
}

async function credits(db: D1Database, after = 0, limit = 10): Promise<D1PreparedStatement[]> {
  return (await readLedger(after, limit)).map((e) => creditStatement(e, db));
}

describe("outcomes under faults", () => {
  it("the batch is fixed when commit is called: emptying the array during a retry changes nothing", async () => {
    await appendEvents(2);
    await seedCheckpoint("ledger", 0);
    const faulty = injectFaults(env.DB);
    faulty.inject({ kinds: ["batch"], timing: "before" });
    const store = new D1CheckpointStore(faulty.db, fast);
    const statements = await credits(faulty.db);
    const pending = store.commit("ledger", 2, statements, { expected: 0 });
    statements.length = 0; // the caller reuses its array while the commit is pending
    await pending;
    expect(faulty.calls.filter((c) => c.kind === "batch").map((c) => c.sql.length)).toEqual([3, 3]);
    expect((await ledgerTotals()).applied).toBe(2);
    expect(await storedRows()).toEqual([{ name: "ledger", position: 2 }]);
  });

  it("a lost response followed by a failing check is an unknown outcome", async () => {
    await appendEvents(2);
    await seedCheckpoint("ledger", 0);
    const faulty = injectFaults(env.DB);
    faulty.inject({ kinds: ["batch"], timing: "after" }); // applied, response lost
    faulty.inject({ kinds: ["all"], message: OVERLOADED }); // the check fails, not transiently
    const store = new D1CheckpointStore(faulty.db, fast);
    const error = await store.commit("ledger", 2, await credits(faulty.db), { expected: 0 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(D1OperationError);
    expect(error).toMatchObject({ outcomeUnknown: true, transient: false, attempts: 2 });
    expect(((error as Error).cause as Error).message).toBe(OVERLOADED);
    expect((await ledgerTotals()).applied).toBe(2); // it was applied: "unknown" was the honest answer
  });

  it("a batch that was applied is never reported as a conflict", async () => {
    await appendEvents(2);
    await seedCheckpoint("ledger", 0);
    let lost = false;
    const db = interceptD1(env.DB, async (call, send) => {
      if (!lost && call.kind === "batch") {
        lost = true;
        await send(); // ours lands
        await env.DB.prepare("UPDATE checkpoints SET position = 7 WHERE name = 'ledger'").run(); // another writer moves on
        throw new Error(NETWORK_CONNECTION_LOST);
      }
      return send();
    });
    const store = new D1CheckpointStore(db, fast);
    const error = await store.commit("ledger", 2, await credits(db), { expected: 0 }).catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(CheckpointConflictError);
    expect(error).toBeInstanceOf(D1OperationError);
    expect(error).toMatchObject({ outcomeUnknown: true, operation: "commit", checkpoint: "ledger" });
    expect(((error as Error).cause as Error).message).toBe(NETWORK_CONNECTION_LOST);
    expect((await ledgerTotals()).applied).toBe(2);
  });

  it("an abort during the backoff after a possibly landed write reports the unknown outcome", async () => {
    await appendEvents(2);
    await seedCheckpoint("ledger", 0);
    const controller = new AbortController();
    const reason = new Error("the request was cancelled");
    const db = interceptD1(env.DB, async (call, send) => {
      if (call.kind !== "batch") return send();
      await send();
      controller.abort(reason); // cancelled while the lost response is being handled
      throw new Error(NETWORK_CONNECTION_LOST);
    });
    const store = new D1CheckpointStore(db, { retry: { baseDelayMs: 60_000, maxDelayMs: 60_000 } });
    const error = await store
      .commit("ledger", 2, await credits(db), { expected: 0, signal: controller.signal })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(D1OperationError);
    expect(error).toMatchObject({ outcomeUnknown: true, aborted: true, attempts: 1 });
    expect((error as Error).cause).toBe(reason);
    expect((await ledgerTotals()).applied).toBe(2);
  });

  it("an abort during the backoff of a read rejects with the signal's reason alone", async () => {
    const controller = new AbortController();
    const reason = new Error("the request was cancelled");
    const db = interceptD1(env.DB, () => {
      controller.abort(reason);
      return Promise.reject(new Error(NETWORK_CONNECTION_LOST));
    });
    const store = new D1CheckpointStore(db, { retry: { baseDelayMs: 60_000, maxDelayMs: 60_000 } });
    await expect(store.load("ledger", { signal: controller.signal })).rejects.toBe(reason);
  });

  it.each(["save", "reset"] as const)("%s reports a lost response as an unknown outcome", async (operation) => {
    await seedCheckpoint("p", 4);
    const faulty = injectFaults(env.DB);
    faulty.inject({ kinds: ["run"], timing: "after", times: Infinity });
    const store = new D1CheckpointStore(faulty.db, { retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 } });
    const error = await (operation === "save" ? store.save("p", 5) : store.reset("p")).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(D1OperationError);
    expect(error).toMatchObject({ operation, attempts: 2, transient: true, outcomeUnknown: true });
  });

  it("a re-sent idempotent write that fails for another reason still reports the first attempt's unknown outcome", async () => {
    await seedCheckpoint("p", 4);
    const faulty = injectFaults(env.DB);
    faulty.inject({ kinds: ["run"], timing: "after" });
    faulty.inject({ kinds: ["run"], message: OVERLOADED });
    const store = new D1CheckpointStore(faulty.db, fast);
    await expect(store.reset("p")).rejects.toMatchObject({ transient: false, outcomeUnknown: true });
    expect(await storedRows()).toEqual([]);
  });
});

describe("conflicts are attributed to the right checkpoint", () => {
  it("another checkpoint's failed condition inside the statements is an error naming it", async () => {
    await seedCheckpoint("ours", 0);
    await seedCheckpoint("theirs", 4);
    const store = new D1CheckpointStore(env.DB);
    const error = await store
      .commit("ours", 1, [store.saveStatement("theirs", 9, { expected: 3 })], { expected: 0 })
      .catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(CheckpointConflictError);
    expect(error).toBeInstanceOf(D1OperationError);
    expect((error as Error).message).toContain('statements[0] (checkpoint "theirs")');
    expect(error).toMatchObject({ outcomeUnknown: false, checkpoint: "ours" });
    expect(await storedRows()).toEqual([
      { name: "ours", position: 0 },
      { name: "theirs", position: 4 },
    ]);
  });

  it("our own failed condition is still our conflict when the statements hold other conditions", async () => {
    await seedCheckpoint("ours", 5);
    await seedCheckpoint("theirs", 3);
    const store = new D1CheckpointStore(env.DB);
    const commit = store.commit("ours", 6, [store.saveStatement("theirs", 9, { expected: 3 })], { expected: 0 });
    await expect(commit).rejects.toBeInstanceOf(CheckpointConflictError);
    expect(await storedRows()).toEqual([
      { name: "ours", position: 5 },
      { name: "theirs", position: 3 },
    ]);
  });

  it("a transient fault on the load that attributes a failed condition is retried: still our conflict", async () => {
    await appendEvents(2);
    await seedCheckpoint("ledger", 5);
    const faulty = injectFaults(env.DB);
    faulty.inject({ kinds: ["all"], sql: /^SELECT position FROM checkpoints/, times: 1 });
    const store = new D1CheckpointStore(faulty.db, fast);
    const error = await store.commit("ledger", 2, await credits(faulty.db), { expected: 0 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointConflictError);
    expect(faulty.faults).toHaveLength(1);
    expect((await ledgerTotals()).applied).toBe(0);
  });

  it("an unconditional commit is never a conflict: the failed condition is the statements'", async () => {
    await seedCheckpoint("theirs", 4);
    const store = new D1CheckpointStore(env.DB);
    const commit = store.commit("ours", 1, [store.saveStatement("theirs", 9, { expected: null })]);
    await expect(commit).rejects.toSatisfy((e) => e instanceof D1OperationError && e.message.includes('"theirs"'));
  });

  it("the runner fails with that error instead of reporting a conflict forever", async () => {
    await appendEvents(3);
    await seedCheckpoint("other", 10);
    const store = new D1CheckpointStore(env.DB);
    const runner = new ProjectionRunner<LedgerEvent>({
      name: "ledger",
      store,
      readEvents: (after, limit) => readLedger(after, limit),
      project: (events) => [store.saveStatement("other", 11, { expected: 9 }), ...events.map((e) => creditStatement(e))],
    });
    await expect(runner.run()).rejects.toSatisfy((e) => e instanceof D1OperationError && e.message.includes('"other"'));
    expect((await ledgerTotals()).applied).toBe(0);
  });
});

describe("the run summary reports only what happened", () => {
  it("skipped positions of a batch that lost its commit are not reported", async () => {
    await appendEvents(5);
    const store = new D1CheckpointStore(env.DB);
    const runner = new ProjectionRunner<LedgerEvent>({
      name: "ledger",
      store,
      batchSize: 5,
      readEvents: overtakenReader(store, 5),
      project: (events) =>
        events.map((e) => {
          if (e.position === 3) throw new Error("poison");
          return creditStatement(e);
        }),
      onError: () => "skip",
    });
    await expect(runner.run()).resolves.toMatchObject({ conflict: true, skipped: [], events: 0, batches: 0 });
  });

  it("a project that throws again on the events it kept is a ProjectionError", async () => {
    await appendEvents(4);
    let calls = 0;
    const runner = new ProjectionRunner<LedgerEvent>({
      name: "ledger",
      store: new D1CheckpointStore(env.DB),
      readEvents: (after, limit) => readLedger(after, limit),
      project: (events) => {
        calls += 1;
        if (events.some((e) => e.position === 2) || (events.length > 1 && calls > 1)) throw new Error("flaky");
        return events.map((e) => creditStatement(e));
      },
      onError: () => "skip",
    });
    const error = await runner.run().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProjectionError);
    expect((error as Error).message).toContain("after skipping 2");
    expect((await ledgerTotals()).applied).toBe(0);
  });
});
