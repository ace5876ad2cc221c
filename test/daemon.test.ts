import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { AlarmSchedule, ProjectionDaemon } from "../src/daemon.js";
import { settleDaemon } from "../src/testing.js";
import { D1RunLog } from "../src/metrics.js";
import { CheckpointRangeError, CheckpointTypeError, D1CheckpointStore } from "../src/index.js";
import { resetDaemonTables } from "./support/daemon-tables.js";

// The projection daemon (decision 0025) in workerd against local D1: woken by
// notifies, one run at a time, chained across invocations within a budget,
// backing off on failure, surviving eviction and aborts, poked by a cron, and
// driving a rebuild to its switch. Alarms fire by themselves here too, so the
// tests drive them with runDurableObjectAlarm until nothing is scheduled.

const db = env.DB;
type Stub = DurableObjectStub<import("./support/daemon-object.js").TestDaemon>;

let objects = 0;
/** A daemon object of its own, configured by its name. */
function daemon(config = ""): Stub {
  objects += 1;
  return env.TEST_DAEMON.get(env.TEST_DAEMON.idFromName(`${config};n=${String(objects)}-${String(Date.now())}`));
}

beforeEach(() => resetDaemonTables(db));

/** Appends `count` events in set-based batches; amounts differ by position, accounts cycle over 7. */
async function append(count: number): Promise<void> {
  const newest = (await db.prepare("SELECT COALESCE(MAX(position), 0) AS p FROM dm_events").first<{ p: number }>())?.p ?? 0;
  for (let from = newest + 1; from <= newest + count; from += 5000) {
    const rows = Array.from({ length: Math.min(5000, newest + count - from + 1) }, (_, i) => ({ p: from + i }));
    await db
      .prepare("INSERT INTO dm_events (position, account, amount) SELECT value ->> 'p', 'a' || ((value ->> 'p') % 7), (value ->> 'p') % 5 + 1 FROM json_each(?1)")
      .bind(JSON.stringify(rows))
      .run();
  }
}

/** Every event applied exactly once: the totals equal the events', per account, and so do the counts. */
async function expectExactlyOnce(table = "dm_totals"): Promise<void> {
  const events = await db.prepare("SELECT account, SUM(amount) AS total, COUNT(*) AS n FROM dm_events GROUP BY account ORDER BY account").all();
  const model = await db.prepare(`SELECT account, total, n FROM ${table} ORDER BY account`).all();
  expect(model.results).toEqual(events.results);
}

/** Runs the alarms until nothing is due: the daemon's chained invocations, without waiting for the clock. */
function settle(stub: Stub): Promise<number> {
  return settleDaemon(stub, runDurableObjectAlarm);
}

describe("a projection daemon", () => {
  it("a storm of 200 notifies while appends go on: one run at a time, every event once, caught up at the end", async () => {
    const stub = daemon("batch=50");
    await append(300);
    const appends = (async () => {
      for (let i = 0; i < 10; i++) await append(20 + i);
    })();
    const notifies = Array.from({ length: 200 }, (_, i) => stub.notify(i));
    await Promise.all([appends, ...notifies]);
    await stub.notify();
    await settle(stub);
    await expectExactlyOnce();
    const counts = await stub.counts();
    expect(counts.most).toBe(1);
    // Coalesced: far fewer runs than notifies.
    expect(counts.started).toBeLessThan(50);
    expect(await stub.status()).toMatchObject({ state: "idle", pending: false, attempts: 0, nextRunAt: undefined });
  });

  it("with the free plan's 50 queries per invocation, 10,000 events catch up through chained invocations, no cron", async () => {
    const stub = daemon("budget=50;batch=100");
    await append(10_000);
    await stub.notify(10_000);
    await settle(stub);
    await expectExactlyOnce();
    const counts = await stub.counts();
    expect(counts.budgets.every((queries) => queries <= 50)).toBe(true);
    expect(counts.started).toBeGreaterThan(3);
    expect((await stub.status()).lastRun).toMatchObject({ ended: "caughtUp", caughtUp: true });
  });

  it("a run that fails after its commit is retried and resumes: nothing lost, nothing applied twice", async () => {
    const stub = daemon("batch=40");
    await append(200);
    await db.prepare("INSERT INTO dm_flags (what) VALUES ('throwAfter')").run();
    await stub.notify();
    await runDurableObjectAlarm(stub);
    const failed = await stub.status();
    expect(failed).toMatchObject({ state: "backingOff", attempts: 1, lastError: "failed after its commit (test flag)", pending: true });
    await stub.wake();
    await settle(stub);
    await expectExactlyOnce();
    expect(await stub.status()).toMatchObject({ state: "idle", attempts: 0, lastError: undefined });
  });

  it("evicted between a notify and its run, the work is still done without the cron", async () => {
    const stub = daemon();
    await append(120);
    await stub.notify(120);
    await evictDurableObject(stub);
    expect(await runDurableObjectAlarm(stub)).toBe(true); // the alarm survived the eviction
    await settle(stub);
    await expectExactlyOnce();
  });

  it("a failing projection backs off with growing, capped delays, shows why, and resumes once fixed", async () => {
    const stub = daemon();
    await append(50);
    await db.prepare("INSERT INTO dm_flags (what) VALUES ('fail')").run();
    await stub.notify();
    const delays: (number | undefined)[] = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      await runDurableObjectAlarm(stub);
      const status = await stub.status();
      expect(status).toMatchObject({ state: "backingOff", attempts: attempt + 1, lastError: "the read model's table is locked (test flag)" });
      expect(status.nextRunAt?.getTime()).toBeGreaterThan(Date.now());
      delays.push(status.lastRun?.retryInMs);
      // A notify while backing off keeps the delay: it never makes a hot loop.
      const before = status.nextRunAt?.getTime();
      await stub.notify();
      expect((await stub.status()).nextRunAt?.getTime()).toBe(before);
      await stub.wake(); // the admin's Wake: try now
    }
    expect(delays).toEqual([1000, 2000, 4000, 4000]);
    await db.prepare("DELETE FROM dm_flags").run();
    await settle(stub);
    await expectExactlyOnce();
    expect(await stub.status()).toMatchObject({ state: "idle", attempts: 0, lastError: undefined });
  });

  it("a lost notify is picked up by the cron's poke; pause and resume", async () => {
    const stub = daemon();
    await append(80); // appended, but the notify was lost
    expect(await settle(stub)).toBe(0);
    await stub.pause();
    await stub.poke();
    expect(await stub.status()).toMatchObject({ state: "paused", pending: true, nextRunAt: undefined });
    await stub.resume();
    await settle(stub);
    await expectExactlyOnce();
  });

  it("drives a rebuild to the end in chained invocations and switches it live when it has caught up (autoSwitch)", async () => {
    const stub = daemon("versions;budget=60;batch=50");
    await append(400);
    await stub.notify();
    await settle(stub);
    await expectExactlyOnce();
    const store = new D1CheckpointStore(db);
    await store.startRebuild("dm", 2, { tables: { dm_totals: "dm_totals_v2" }, create: [db.prepare("CREATE TABLE dm_totals_v2 (account TEXT PRIMARY KEY, total INTEGER NOT NULL, n INTEGER NOT NULL)")] });
    await append(100);
    await stub.notify();
    await settle(stub);
    expect((await store.versions("dm")).map((v) => `${String(v.version)} ${v.state}`)).toEqual(["1 retired", "2 live"]);
    expect((await stub.status()).lastRun?.switched ?? []).toEqual([]); // the switch happened in an earlier run of the chain
    await expectExactlyOnce("dm_totals_v2");
    await append(10);
    await stub.notify();
    await settle(stub);
    await expectExactlyOnce("dm_totals"); // the read name is now a view of version 2's table
  });

  it("its metrics option reports every run it makes, with the run's rows", async () => {
    const stub = daemon("metrics;batch=100");
    await append(450);
    await stub.notify();
    await settle(stub);
    await expectExactlyOnce();
    const recent = (await new D1RunLog(db).recent(["dm"])).get("dm");
    expect(recent?.events).toBe(450);
    expect(recent?.runs).toBeGreaterThanOrEqual(1);
    // 7 accounts inserted once (a row and its index entry each), then updated in place; 2 own rows per batch and the lease's.
    expect(recent?.rowsWritten).toBeGreaterThan(5 * 2);
    expect(recent?.ownRowsWritten).toBeGreaterThanOrEqual(5 * 2);
  });

  it("bad configuration and bad RPC input are typed errors", async () => {
    const stub = daemon();
    const error = await stub.notify(-1).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/position must be an integer from 0/);
    await runInDurableObject(stub, (_instance, state) => {
      const run = { run: () => Promise.resolve({ ended: "caughtUp", caughtUp: true, queries: 0 }) };
      expect(() => new ProjectionDaemon(state.storage, { name: "", projection: run })).toThrow(CheckpointRangeError);
      expect(() => new ProjectionDaemon(state.storage, { name: "x", projection: {} as never })).toThrow(CheckpointTypeError);
      expect(() => new ProjectionDaemon(state.storage, { name: "x", projection: run, budget: 0 })).toThrow(CheckpointRangeError);
      expect(() => new ProjectionDaemon(state.storage, { name: "x", projection: run, backoff: { baseMs: 10, maxMs: 5 } })).toThrow(CheckpointRangeError);
      expect(() => new ProjectionDaemon(state.storage, { name: "x", projection: run, budgte: 5 } as never)).toThrow(/unknown key "budgte"/);
      expect(() => new ProjectionDaemon(state.storage, { name: "x", projection: run, autoSwitch: { store: {} as never, names: ["x"] } })).toThrow(CheckpointTypeError);
      expect(() => new ProjectionDaemon(state.storage, { name: "x", projection: run, schedule: {} as never })).toThrow(CheckpointTypeError);
      expect(() => new ProjectionDaemon(state.storage, { name: "x", projection: run, metrics: { record: 5 } as never })).toThrow(/options\.metrics\.record/);
    });
  });

  it("shares the object's alarm: a job of the object's own keeps its time beside the daemon's", async () => {
    const stub = daemon();
    const later = Date.now() + 3_600_000;
    await runInDurableObject(stub, async (_instance, state) => {
      await new AlarmSchedule(state.storage).set("reminder", later);
    });
    await append(30);
    await stub.notify();
    await settle(stub);
    await expectExactlyOnce();
    const left = await runInDurableObject(stub, async (_instance, state) => ({ due: new AlarmSchedule(state.storage).dueAt("reminder"), alarm: await state.storage.getAlarm() }));
    expect(left).toEqual({ due: later, alarm: later });
  });
});
