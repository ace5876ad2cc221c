import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import {
  CheckpointRangeError,
  CheckpointTypeError,
  D1CheckpointStore,
  ProjectionRunner,
  type D1Client,
  type PipelinedProjectionStore,
} from "../src/index.js";
import { countD1, injectFaults } from "../src/testing.js";
import { appendEvents, creditStatement, ledgerTotals, readLedger, resetLedger, type LedgerEvent } from "./support/ledger.js";

// Run leases: a runner with `lease` claims it in the load's round trip; a run
// that finds another's lease stops there and notes pending work, which the
// holder picks up before it lets go. Exactly-once never depends on it.

beforeEach(async () => {
  await resetLedger();
  await env.DB.prepare("DELETE FROM projection_leases").run();
});

function leased(db: D1Client, options: { batchSize?: number; beforeProject?: () => Promise<void> } = {}): ProjectionRunner<LedgerEvent> {
  let hook = options.beforeProject;
  return new ProjectionRunner<LedgerEvent>({
    name: "ledger",
    store: new D1CheckpointStore(db),
    batchSize: options.batchSize ?? 10,
    lease: { ttlMs: 60_000 },
    eventsQuery: (after, limit) =>
      db.prepare("SELECT position, account, amount FROM ledger_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
    project: async (events) => {
      const once = hook;
      hook = undefined;
      await once?.();
      return events.map((event) => creditStatement(event, db));
    },
  });
}

/** The leases held (a lease let go is expired in place). */
async function leaseRows(): Promise<{ name: string; pending: number }[]> {
  return (await env.DB.prepare("SELECT name, pending FROM projection_leases WHERE expires_at > 0").all<{ name: string; pending: number }>()).results;
}

describe("run leases", () => {
  it("a lone run claims the lease with its load, and lets go when caught up", async () => {
    const sum = await appendEvents(25);
    const counted = countD1(env.DB);
    await leased(counted.db).run({ maxBatches: 1 }); // this isolate has seen the projection on this binding
    counted.clear();
    await expect(leased(counted.db).run()).resolves.toMatchObject({ from: 10, to: 25, caughtUp: true, yielded: false });
    expect(counted.calls[0]?.sql.map((sql) => sql.split(" ", 3).join(" "))).toEqual([
      "INSERT INTO projection_leases",
      "UPDATE projection_leases SET",
      "SELECT position FROM",
      "SELECT position, account,",
    ]);
    // the last batch commits, lets go of the lease and reads on, in one round trip: 3 in all, as many as without a lease
    expect(counted.calls).toHaveLength(3);
    const last = counted.calls.at(-1)?.sql ?? [];
    expect(last[0]).toMatch(/^INSERT INTO checkpoints/);
    expect(last.slice(-3).map((sql) => sql.split(" ", 2).join(" "))).toEqual(["UPDATE projection_leases", "UPDATE projection_leases", "SELECT position,"]);
    expect(await leaseRows()).toEqual([]);
    expect(await ledgerTotals()).toEqual({ sum, applied: 25 });
  });

  it("a run that finds another's lease stops after one round trip and notes pending work", async () => {
    await appendEvents(5);
    await env.DB.prepare("INSERT INTO projection_leases (name, holder, expires_at) VALUES ('ledger', 'someone', 9e15)").run();
    const counted = countD1(env.DB);
    await expect(leased(counted.db).run()).resolves.toMatchObject({ yielded: true, events: 0, batches: 0, caughtUp: false, conflict: false });
    expect(counted.calls).toHaveLength(1);
    expect(await leaseRows()).toEqual([{ name: "ledger", pending: 1 }]);
    expect((await ledgerTotals()).applied).toBe(0);
  });

  it("an expired lease is taken over", async () => {
    await appendEvents(5);
    await env.DB.prepare("INSERT INTO projection_leases (name, holder, expires_at) VALUES ('ledger', 'crashed', 0)").run();
    await expect(leased(env.DB).run()).resolves.toMatchObject({ yielded: false, to: 5, caughtUp: true });
    expect(await leaseRows()).toEqual([]);
  });

  it("the holder picks up what a yielding run noted, so no append waits for the cron", async () => {
    await appendEvents(5);
    // While the holder projects its first batch, 3 events are appended and their run yields.
    const holder = leased(env.DB, {
      beforeProject: async () => {
        await appendEvents(3);
        await expect(leased(env.DB).run()).resolves.toMatchObject({ yielded: true });
      },
    });
    await expect(holder.run()).resolves.toMatchObject({ to: 8, events: 8, caughtUp: true, yielded: false });
    expect(await leaseRows()).toEqual([]);
    expect((await ledgerTotals()).applied).toBe(8);
  });

  it("a run that ends on its batch budget lets go at once", async () => {
    await appendEvents(30);
    await expect(leased(env.DB).run({ maxBatches: 1 })).resolves.toMatchObject({ to: 10, caughtUp: false });
    expect(await leaseRows()).toEqual([]);
    await expect(leased(env.DB).run()).resolves.toMatchObject({ from: 10, to: 30, yielded: false });
  });

  it("16 runs started at once apply every event exactly once and leave no lease", async () => {
    const sum = await appendEvents(40);
    const summaries = await Promise.all(Array.from({ length: 16 }, () => leased(env.DB).run()));
    await leased(env.DB).run(); // whatever a yielded run left to the holder was picked up; this finds nothing new
    expect(summaries.reduce((n, s) => n + s.events, 0)).toBe(40);
    expect(await ledgerTotals()).toEqual({ sum, applied: 40 });
    expect(await leaseRows()).toEqual([]);
  });

  it("needs eventsQuery and a sane ttl", () => {
    const store = new D1CheckpointStore(env.DB);
    const base = { name: "ledger", store, project: () => [] };
    expect(() => new ProjectionRunner({ ...base, readEvents: (a: number, l: number) => readLedger(a, l), lease: true } as never)).toThrow(CheckpointTypeError);
    const query = (after: number): D1PreparedStatement => env.DB.prepare("SELECT ?1 AS position WHERE 0").bind(after);
    expect(() => new ProjectionRunner({ ...base, eventsQuery: query, lease: { ttlMs: 0 } })).toThrow(CheckpointRangeError);
    expect(() => new ProjectionRunner({ ...base, eventsQuery: query, lease: "yes" as never })).toThrow(CheckpointTypeError);
  });

  it("a lost response of the batch that lets go is re-sent as a renewal only, so the pending work is not dropped", async () => {
    await appendEvents(5);
    const faulty = injectFaults(env.DB);
    faulty.inject({ kinds: ["batch"], sql: /^UPDATE projection_leases SET expires_at = 0/, timing: "after", times: 1 });
    const holder = new ProjectionRunner<LedgerEvent>({
      name: "ledger",
      store: new D1CheckpointStore(faulty.db, { retry: { baseDelayMs: 1, maxDelayMs: 2 } }),
      lease: true,
      eventsQuery: (after, limit) =>
        faulty.db.prepare("SELECT position, account, amount FROM ledger_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
      project: async (events) => {
        if (events[0]?.position === 1) {
          await appendEvents(3);
          await leased(env.DB).run(); // yields, noting pending work
        }
        return events.map((event) => creditStatement(event, env.DB));
      },
    });
    await expect(holder.run()).resolves.toMatchObject({ to: 8, events: 8, caughtUp: true });
    expect(faulty.faults).toHaveLength(1);
    expect((await ledgerTotals()).applied).toBe(8);
    expect(await leaseRows()).toEqual([]);
  });

  it("the holder starts again after a run without a lease got ahead, instead of dropping noted work", async () => {
    await appendEvents(5);
    const holder = leased(env.DB, {
      beforeProject: async () => {
        await appendEvents(3);
        await expect(leased(env.DB).run()).resolves.toMatchObject({ yielded: true }); // notes pending work
        await ledgerRunnerWithoutLease().run({ maxBatches: 1 }); // a cron gets ahead: the holder's commit conflicts
      },
    });
    await expect(holder.run()).resolves.toMatchObject({ conflict: false, caughtUp: true, to: 8 });
    expect((await ledgerTotals()).applied).toBe(8);
    expect(await leaseRows()).toEqual([]);
  });

  it("a run whose start fails after the claim lets go of the lease", async () => {
    await appendEvents(3);
    const fresh = countD1(env.DB); // a binding this isolate has not seen: the read follows the claim
    const failing = new ProjectionRunner<LedgerEvent>({
      name: "ledger",
      store: new D1CheckpointStore(fresh.db),
      lease: true,
      eventsQuery: () => {
        throw new Error("no events table");
      },
      project: () => [],
    });
    await expect(failing.run()).rejects.toThrow("no events table");
    expect(fresh.calls[0]?.sql[0]).toMatch(/^INSERT INTO projection_leases/); // it had claimed
    expect(await leaseRows()).toEqual([]);
  });

  it("releaseLease checks the lease before any query", async () => {
    const counted = countD1(env.DB);
    const store = new D1CheckpointStore(counted.db);
    await expect(store.releaseLease("ledger", { holder: "", ttlMs: 10 }, undefined)).rejects.toBeInstanceOf(CheckpointTypeError);
    await expect(store.releaseLease("ledger", { holder: "h", ttlMs: -1 }, undefined)).rejects.toBeInstanceOf(CheckpointRangeError);
    expect(counted.calls).toEqual([]);
  });

  it("a store without commitAndRelease still hands noted work to the holder: it looks again before letting go", async () => {
    await appendEvents(5);
    const inner = new D1CheckpointStore(env.DB);
    // a store of its own that offers releaseLease but not the optional commitAndRelease
    const store: PipelinedProjectionStore = {
      load: (name, options) => inner.load(name, options),
      commit: (name, position, writes, options) => inner.commit(name, position, writes, options),
      replayParked: (name, position, writes, options) => inner.replayParked(name, position, writes, options),
      commitAndQuery: (name, position, writes, query, options) => inner.commitAndQuery(name, position, writes, query, options),
      loadAndQuery: (name, query, options) => inner.loadAndQuery(name, query, options),
      releaseLease: (name, lease, query, options) => inner.releaseLease(name, lease, query, options),
    };
    let once = true;
    const holder = new ProjectionRunner<LedgerEvent>({
      name: "ledger",
      store,
      batchSize: 10,
      lease: { ttlMs: 60_000 },
      eventsQuery: (after, limit) =>
        env.DB.prepare("SELECT position, account, amount FROM ledger_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
      project: async (events) => {
        if (once) {
          once = false;
          await appendEvents(3);
          await expect(leased(env.DB).run()).resolves.toMatchObject({ yielded: true }); // notes pending work
        }
        return events.map((event) => creditStatement(event, env.DB));
      },
    });
    await expect(holder.run()).resolves.toMatchObject({ to: 8, events: 8, caughtUp: true });
    expect((await ledgerTotals()).applied).toBe(8);
    expect(await leaseRows()).toEqual([]);
  });

  it("the holder overtaken by a cron starts again even when a transient fault strikes the load that attributes the conflict", async () => {
    await appendEvents(5);
    const faulty = injectFaults(env.DB);
    const holder = new ProjectionRunner<LedgerEvent>({
      name: "ledger",
      store: new D1CheckpointStore(faulty.db, { retry: { baseDelayMs: 1, maxDelayMs: 2 } }),
      batchSize: 10,
      lease: { ttlMs: 60_000 },
      eventsQuery: (after, limit) =>
        faulty.db.prepare("SELECT position, account, amount FROM ledger_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
      project: async (events) => {
        if (events[0]?.position === 1) {
          await appendEvents(3);
          await expect(leased(env.DB).run()).resolves.toMatchObject({ yielded: true }); // notes pending work
          await ledgerRunnerWithoutLease().run({ maxBatches: 1 }); // a cron gets ahead: the holder's commit conflicts
          faulty.inject({ kinds: ["all"], sql: /^SELECT position FROM checkpoints/, timing: "before", times: 1 });
        }
        return events.map((event) => creditStatement(event, env.DB));
      },
    });
    await expect(holder.run()).resolves.toMatchObject({ conflict: false, caughtUp: true, to: 8 });
    expect(faulty.faults).toHaveLength(1);
    expect((await ledgerTotals()).applied).toBe(8);
    expect(await leaseRows()).toEqual([]);
  });

  it("lease input errors name the operation that was called", async () => {
    const store = new D1CheckpointStore(env.DB);
    const query = env.DB.prepare("SELECT 1 AS position WHERE 0");
    const release = await store.releaseLease("ledger", { holder: "", ttlMs: 10 }, undefined).catch((e: unknown) => e);
    expect(release).toMatchObject({ operation: "run", argument: "lease.holder" });
    const commit = await store.commitAndRelease("ledger", 1, [], { holder: "h", ttlMs: 0 }, query).catch((e: unknown) => e);
    expect(commit).toBeInstanceOf(CheckpointRangeError);
    expect(commit).toMatchObject({ operation: "commit", argument: "lease.ttlMs" });
    const load = await store.loadAndQuery("ledger", () => query, { lease: { holder: 7 } as never }).catch((e: unknown) => e);
    expect(load).toMatchObject({ operation: "load", argument: "options.lease.holder" });
  });

  it.each([
    ["unknown keys", { ttl: 5 }],
    ["an array", [60_000]],
    ["a Date", new Date()],
    ["a Map", new Map([["ttlMs", 5]])],
  ])("a lease option that is %s is refused, not taken for a 30 s lease", (_label, lease) => {
    const store = new D1CheckpointStore(env.DB);
    const query = (after: number): D1PreparedStatement => env.DB.prepare("SELECT ?1 AS position WHERE 0").bind(after);
    expect(() => new ProjectionRunner({ name: "ledger", store, project: () => [], eventsQuery: query, lease: lease as never })).toThrow(CheckpointTypeError);
  });
});

function ledgerRunnerWithoutLease(): ProjectionRunner<LedgerEvent> {
  return new ProjectionRunner<LedgerEvent>({
    name: "ledger",
    store: new D1CheckpointStore(env.DB),
    batchSize: 10,
    readEvents: (after, limit) => readLedger(after, limit),
    project: (events) => events.map((event) => creditStatement(event)),
  });
}
