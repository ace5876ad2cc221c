import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import {
  CheckpointConflictError,
  D1CheckpointStore,
  D1OperationError,
  TRANSIENT_D1_MESSAGES,
  type D1CheckpointStoreOptions,
} from "../src/index.js";
import { injectFaults, interceptD1, type D1CallKind, type FaultTiming } from "../src/testing.js";
import { collect, storedRows } from "./support/helpers.js";
import { appendEvents, creditStatement, ledgerTotals, readLedger, resetLedger } from "./support/ledger.js";

const fast: D1CheckpointStoreOptions = { retry: { baseDelayMs: 1, maxDelayMs: 2 } };

beforeEach(() => resetLedger());

async function seedCheckpoint(name: string, position: number): Promise<void> {
  await env.DB.prepare("INSERT INTO checkpoints (name, position) VALUES (?1, ?2)").bind(name, position).run();
}

async function ledgerCredits(db: D1Database): Promise<D1PreparedStatement[]> {
  return (await readLedger(0, 10)).map((e) => creditStatement(e, db));
}

/** One store operation under a fault: how to set up, run it, and what must hold afterwards. */
interface Operation {
  readonly label: string;
  readonly kinds: readonly D1CallKind[];
  setup(): Promise<void>;
  act(store: D1CheckpointStore, db: D1Database): Promise<unknown>;
  /** What the caller sees and what is stored, after one transient fault at `timing`. */
  verify(outcome: PromiseSettledResult<unknown>, timing: FaultTiming): Promise<void>;
}

const resolved = (outcome: PromiseSettledResult<unknown>): unknown => {
  if (outcome.status === "rejected") throw outcome.reason;
  return outcome.value;
};

const operations: readonly Operation[] = [
  {
    label: "save (unconditional)",
    kinds: ["run"],
    setup: () => Promise.resolve(),
    act: (store) => store.save("p", 5),
    verify: async (outcome) => {
      resolved(outcome);
      expect(await storedRows()).toEqual([{ name: "p", position: 5 }]);
    },
  },
  {
    label: "save (expected)",
    kinds: ["run"],
    setup: () => seedCheckpoint("p", 4),
    act: (store) => store.save("p", 5, { expected: 4 }),
    verify: async (outcome) => {
      resolved(outcome); // never a false conflict when the lost write had landed
      expect(await storedRows()).toEqual([{ name: "p", position: 5 }]);
    },
  },
  {
    label: "save (expected null)",
    kinds: ["run"],
    setup: () => Promise.resolve(),
    act: (store) => store.save("p", 5, { expected: null }),
    verify: async (outcome) => {
      resolved(outcome);
      expect(await storedRows()).toEqual([{ name: "p", position: 5 }]);
    },
  },
  {
    label: "load",
    kinds: ["all"],
    setup: () => seedCheckpoint("p", 4),
    act: (store) => store.load("p"),
    verify: (outcome) => {
      expect(resolved(outcome)).toEqual({ position: 4, found: true });
      return Promise.resolve();
    },
  },
  {
    label: "reset",
    kinds: ["run"],
    setup: () => seedCheckpoint("p", 4),
    act: (store) => store.reset("p"),
    verify: async (outcome) => {
      resolved(outcome);
      expect(await storedRows()).toEqual([]);
    },
  },
  {
    label: "names page",
    kinds: ["all"],
    setup: async () => {
      for (const name of ["a", "b", "c"]) await seedCheckpoint(name, 1);
    },
    act: (store) => collect(store.names({ pageSize: 2 })),
    verify: (outcome) => {
      expect(resolved(outcome)).toEqual(["a", "b", "c"]);
      return Promise.resolve();
    },
  },
  {
    label: "entries page",
    kinds: ["all"],
    setup: async () => {
      for (const name of ["a", "b", "c"]) await seedCheckpoint(name, 1);
    },
    act: (store) => collect(store.entries({ pageSize: 2 })),
    verify: (outcome) => {
      expect(resolved(outcome)).toHaveLength(3);
      return Promise.resolve();
    },
  },
  {
    label: "commit (expected)",
    kinds: ["batch"],
    setup: async () => {
      await appendEvents(2);
      await seedCheckpoint("ledger", 0);
    },
    act: async (store, db) => store.commit("ledger", 2, await ledgerCredits(db), { expected: 0 }),
    verify: async (outcome) => {
      resolved(outcome);
      expect((await ledgerTotals()).applied).toBe(2); // once, not twice
      expect(await storedRows()).toEqual([{ name: "ledger", position: 2 }]);
    },
  },
  {
    label: "commit (unconditional): not retried, outcome unknown",
    kinds: ["batch"],
    setup: async () => {
      await appendEvents(2);
      await seedCheckpoint("ledger", 0);
    },
    act: async (store, db) => store.commit("ledger", 2, await ledgerCredits(db)),
    verify: async (outcome, timing) => {
      expect(outcome.status).toBe("rejected");
      const error = (outcome as PromiseRejectedResult).reason as D1OperationError;
      expect(error).toBeInstanceOf(D1OperationError);
      expect(error).toMatchObject({ operation: "commit", attempts: 1, transient: true, outcomeUnknown: true });
      const landed = timing === "after";
      expect((await ledgerTotals()).applied).toBe(landed ? 2 : 0);
      expect(await storedRows()).toEqual([{ name: "ledger", position: landed ? 2 : 0 }]);
    },
  },
  {
    label: "migrate (create)",
    kinds: ["batch"],
    setup: () => env.DB.prepare("DROP TABLE checkpoints").run().then(() => undefined),
    act: (_, db) => D1CheckpointStore.create(db, fast),
    verify: async (outcome) => {
      resolved(outcome);
      expect(await storedRows()).toEqual([]);
    },
  },
];

describe("fault matrix: every operation × every transient message × before/after execution", () => {
  const matrix = operations.flatMap((operation) =>
    TRANSIENT_D1_MESSAGES.flatMap((message) =>
      (["before", "after"] as const).map((timing) => [operation.label, message, timing, operation] as const),
    ),
  );

  it.each(matrix)("%s | %s | %s", async (_, message, timing, operation) => {
    await operation.setup();
    const faulty = injectFaults(env.DB);
    faulty.inject({ kinds: operation.kinds, timing, message: `D1_ERROR: ${message}` });
    const store = new D1CheckpointStore(faulty.db, fast);
    const outcome = (await Promise.allSettled([operation.act(store, faulty.db)]))[0];
    expect(faulty.faults).toHaveLength(1);
    await operation.verify(outcome, timing);
  });
});

describe("what is not retried, and how retries end", () => {
  it.each(operations.filter((o) => !o.label.startsWith("migrate")))("$label: a non-transient error is not retried", async (operation) => {
    await operation.setup();
    const faulty = injectFaults(env.DB);
    faulty.inject({ kinds: operation.kinds, message: "D1_ERROR: SQLITE_AUTH: not authorized" });
    const store = new D1CheckpointStore(faulty.db, fast);
    const error = await operation.act(store, faulty.db).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(D1OperationError);
    expect(error).toMatchObject({ attempts: 1, transient: false, outcomeUnknown: false });
    expect(((error as Error).cause as Error).message).toBe("D1_ERROR: SQLITE_AUTH: not authorized");
    expect(faulty.calls.filter((c) => operation.kinds.includes(c.kind))).toHaveLength(1);
  });

  it("gives up after 5 attempts in all by default, keeping the last error as cause", async () => {
    const faulty = injectFaults(env.DB);
    faulty.inject({ times: Number.POSITIVE_INFINITY });
    const store = new D1CheckpointStore(faulty.db, fast);
    const error = await store.load("p").catch((e: unknown) => e);
    expect(error).toMatchObject({ operation: "load", checkpoint: "p", attempts: 5, transient: true });
    expect(faulty.calls).toHaveLength(5);
  });

  it("retry: false sends once", async () => {
    const faulty = injectFaults(env.DB);
    faulty.inject({});
    const store = new D1CheckpointStore(faulty.db, { retry: false });
    await expect(store.save("p", 1)).rejects.toMatchObject({ attempts: 1, transient: true, outcomeUnknown: true });
    expect(faulty.calls).toHaveLength(1);
  });

  it("attempts are configurable", async () => {
    const faulty = injectFaults(env.DB);
    faulty.inject({ times: 2 });
    await expect(new D1CheckpointStore(faulty.db, { retry: { attempts: 2, baseDelayMs: 0 } }).reset("p")).rejects.toMatchObject({
      attempts: 2,
    });
    faulty.inject({ times: 2 });
    await new D1CheckpointStore(faulty.db, { retry: { attempts: 3, baseDelayMs: 0 } }).reset("p");
    expect(faulty.calls).toHaveLength(5);
  });

  it("backs off exponentially with full jitter, within maxDelayMs", async () => {
    const { backoffDelay, DEFAULT_RETRY } = await import("../src/d1/retry.js");
    const policy = { ...DEFAULT_RETRY, baseDelayMs: 100, maxDelayMs: 1000, random: () => 0.999 };
    expect([1, 2, 3, 4, 5].map((attempt) => backoffDelay(policy, attempt))).toEqual([99, 199, 399, 799, 999]);
    expect(backoffDelay({ ...policy, random: () => 0 }, 3)).toBe(0);
  });

  it("an abort during backoff stops at once", async () => {
    const controller = new AbortController();
    const reason = new Error("shutting down");
    const db = interceptD1(env.DB, () => {
      queueMicrotask(() => {
        controller.abort(reason);
      });
      return Promise.reject(new Error("D1_ERROR: Network connection lost."));
    });
    const store = new D1CheckpointStore(db, { retry: { baseDelayMs: 60_000, maxDelayMs: 60_000, random: () => 0.99 } });
    await expect(store.load("p", { signal: controller.signal })).rejects.toBe(reason);
  });

  it("a lost conditional write that another writer overtook has an unknown outcome, not a conflict", async () => {
    await seedCheckpoint("p", 4);
    let first = true;
    const db = interceptD1(env.DB, async (call, send) => {
      if (first && call.kind === "run") {
        first = false;
        await env.DB.prepare("UPDATE checkpoints SET position = 99 WHERE name = 'p'").run(); // someone else
        throw new Error("D1_ERROR: Network connection lost.");
      }
      return send();
    });
    const store = new D1CheckpointStore(db, fast);
    // The check cannot tell "ours never ran" from "ours landed, then another writer moved on".
    const error = await store.save("p", 5, { expected: 4 }).catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(CheckpointConflictError);
    expect(error).toBeInstanceOf(D1OperationError);
    expect(error).toMatchObject({ outcomeUnknown: true, transient: true });
    expect((error as Error).message).toContain("position 99");
    expect(await storedRows()).toEqual([{ name: "p", position: 99 }]);
  });

  it("a commit whose expected equals its position is not retried (a landed batch could not be told apart)", async () => {
    await seedCheckpoint("ledger", 0);
    await appendEvents(1);
    const faulty = injectFaults(env.DB);
    faulty.inject({ kinds: ["batch"], timing: "after" });
    const store = new D1CheckpointStore(faulty.db, fast);
    const error = await store.commit("ledger", 0, await ledgerCredits(faulty.db), { expected: 0 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ outcomeUnknown: true, attempts: 1 });
    expect((await ledgerTotals()).applied).toBe(1);
  });
});
