import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { countD1 } from "../src/testing/intercept.js";
import { CheckpointConflictError, D1CheckpointStore, D1OperationError, isCheckpointConflict } from "../src/index.js";
import { appendEvents, creditStatement, ledgerTotals, readLedger, resetLedger } from "./support/ledger.js";
import { storedRows } from "./support/helpers.js";

beforeEach(() => resetLedger());

const failing = (): D1PreparedStatement =>
  env.DB.prepare("INSERT INTO ledger_balances (account, balance, applied) VALUES ('x', NULL, 1)");

describe("commit: read model and checkpoint in one batch", () => {
  it("applies the statements and the checkpoint in one round trip", async () => {
    await appendEvents(3);
    const counted = countD1(env.DB);
    const store = new D1CheckpointStore(counted.db);
    const events = await readLedger(0, 3);
    await store.commit("ledger", 3, events.map((e) => creditStatement(e)), { expected: null });
    expect(counted.calls.map((c) => c.kind)).toEqual(["batch"]);
    expect(counted.calls[0]?.sql).toHaveLength(4);
    await expect(store.load("ledger")).resolves.toEqual({ position: 3, found: true });
    expect((await ledgerTotals()).applied).toBe(3);
  });

  it("accepts statements prepared on the binding, a session or a counting wrapper, whichever the store wraps", async () => {
    await appendEvents(4);
    const session = env.DB.withSession("first-primary");
    const counted = countD1(env.DB);
    const events = await readLedger(0, 4);
    const [a, b, c, d] = events;
    if (a === undefined || b === undefined || c === undefined || d === undefined) throw new Error("4 events expected");
    await new D1CheckpointStore(session).commit("ledger", 1, [creditStatement(a, env.DB)], { expected: null });
    await new D1CheckpointStore(env.DB).commit("ledger", 2, [creditStatement(b, session)], { expected: 1 });
    await new D1CheckpointStore(counted.db).commit("ledger", 3, [creditStatement(c, env.DB)], { expected: 2 });
    await new D1CheckpointStore(env.DB).commit("ledger", 4, [creditStatement(d, counted.db)], { expected: 3 });
    expect((await ledgerTotals()).applied).toBe(4);
  });

  it("a failing read-model statement leaves the checkpoint unchanged", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.save("ledger", 5);
    const events = await (appendEvents(10).then(() => readLedger(5, 2)));
    const error = await store
      .commit("ledger", 7, [...events.map((e) => creditStatement(e)), failing()], { expected: 5 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(D1OperationError);
    expect(error).toMatchObject({ operation: "commit", checkpoint: "ledger", outcomeUnknown: false });
    expect(String((error as Error).cause)).toMatch(/NOT NULL constraint failed: ledger_balances\.balance/);
    expect(isCheckpointConflict(error)).toBe(false);
    await expect(store.load("ledger")).resolves.toEqual({ position: 5, found: true });
    expect(await ledgerTotals()).toEqual({ sum: 0, applied: 0 });
  });

  it("a conflict leaves the read model unchanged", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.save("ledger", 9);
    await appendEvents(3);
    const events = await readLedger(0, 3);
    const error = await store
      .commit("ledger", 3, events.map((e) => creditStatement(e)), { expected: 0 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointConflictError);
    expect(error).toMatchObject({ checkpoint: "ledger", expected: 0, operation: "commit" });
    expect(isCheckpointConflict(error)).toBe(true);
    expect(await ledgerTotals()).toEqual({ sum: 0, applied: 0 });
    await expect(store.load("ledger")).resolves.toEqual({ position: 9, found: true });
  });

  it("expected null conflicts once a checkpoint exists", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.save("ledger", 0);
    await appendEvents(1);
    const [event] = await readLedger(0, 1);
    if (event === undefined) throw new Error("no event");
    await expect(store.commit("ledger", 1, [creditStatement(event)], { expected: null })).rejects.toBeInstanceOf(
      CheckpointConflictError,
    );
    expect(await ledgerTotals()).toEqual({ sum: 0, applied: 0 });
  });

  it("without expected, commits unconditionally", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.save("ledger", 40);
    await store.commit("ledger", 2, []);
    await expect(store.load("ledger")).resolves.toEqual({ position: 2, found: true });
  });
});

describe("saveStatement and resetStatement in the caller's own batch", () => {
  it("a conditional saveStatement that holds commits with the batch", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.save("ledger", 1);
    await env.DB.batch([store.saveStatement("ledger", 2, { expected: 1 }), creditStatement({ position: 2, account: "a", amount: 5 })]);
    await expect(store.load("ledger")).resolves.toEqual({ position: 2, found: true });
    expect(await ledgerTotals()).toEqual({ sum: 5, applied: 1 });
  });

  it("a conditional saveStatement that fails makes the statement itself fail and rolls the batch back", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.save("ledger", 1);
    for (const expected of [0, null, 2]) {
      const error = await env.DB.batch([
        creditStatement({ position: 2, account: "a", amount: 5 }),
        store.saveStatement("ledger", 2, { expected }),
      ]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      expect(isCheckpointConflict(error)).toBe(true);
    }
    expect(await ledgerTotals()).toEqual({ sum: 0, applied: 0 });
    await expect(store.load("ledger")).resolves.toEqual({ position: 1, found: true });
  });

  it("a conditional saveStatement on a missing checkpoint holds for null and 0, and fails for any other position", async () => {
    const store = new D1CheckpointStore(env.DB);
    await expect(store.saveStatement("fresh", 3, { expected: 1 }).run()).rejects.toSatisfy(isCheckpointConflict);
    expect(await storedRows()).toEqual([]);
    await store.saveStatement("fresh", 3, { expected: null }).run();
    expect(await storedRows()).toEqual([{ name: "fresh", position: 3 }]);
    await store.saveStatement("new", 2, { expected: 0 }).run();
    expect(await storedRows()).toEqual([{ name: "fresh", position: 3 }, { name: "new", position: 2 }]);
  });

  it("resetStatement clears the checkpoint together with the read model", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.commit("ledger", 1, [creditStatement({ position: 1, account: "a", amount: 2 })]);
    await env.DB.batch([env.DB.prepare("DELETE FROM ledger_balances"), store.resetStatement("ledger")]);
    await expect(store.load("ledger")).resolves.toEqual({ position: 0, found: false });
    expect(await ledgerTotals()).toEqual({ sum: 0, applied: 0 });
  });

  it("isCheckpointConflict is false for other errors and non-errors", () => {
    expect(isCheckpointConflict(new Error("NOT NULL constraint failed: ledger_balances.balance"))).toBe(false);
    expect(isCheckpointConflict("NOT NULL constraint failed: checkpoints.position")).toBe(false);
    expect(isCheckpointConflict(undefined)).toBe(false);
    expect(isCheckpointConflict(new Error("wrapped", { cause: new Error("D1_ERROR: NOT NULL constraint failed: checkpoints.position: SQLITE_CONSTRAINT") }))).toBe(true);
  });
});
