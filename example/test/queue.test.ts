import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext, type MessageBatchMessage, type QueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { ProjectionGroupError } from "../../src/index.js";
import { countD1, injectFaults } from "../../src/testing.js";
import { LEDGER_PROJECTIONS } from "../src/ledger.js";
import { retryDelay, type Wake } from "../src/queue.js";
import type { Env } from "../src/env.js";
import worker from "../src/worker.js";
import { resetExample } from "./reset.js";

// The queue consumer, driven as Queues drive it: batches built with
// createMessageBatch, handed to the Worker's queue handler, and their
// ack/retry state read back with getQueueResult. No message sent here goes
// through the real queue: deliveries are the test's, in the order it chooses.

const QUEUE = "ledger-wake";

/** The Worker, as the runtime sees it: its queue handler is called with (batch, env, ctx). */
const handler: ExportedHandler<Env> = worker;

let nextId = 0;

/** Messages with these bodies, as Queues hand them over (a first delivery: attempts 1). */
function messages(bodies: readonly unknown[]): MessageBatchMessage[] {
  return bodies.map((body) => ({ id: `message-${++nextId}`, timestamp: new Date(1_700_000_000_000), attempts: 1, body }));
}

/** Wake-ups naming these positions. */
function wakes(positions: readonly number[]): MessageBatchMessage[] {
  return messages(positions.map((position): Wake => ({ position })));
}

/** The same messages delivered again, as Queues redeliver them (same ids, one more attempt). */
function redelivered(batch: readonly MessageBatchMessage[]): MessageBatchMessage[] {
  return batch.map((message) => ({ ...message, attempts: message.attempts + 1 }));
}

/** Delivers a batch to the Worker's queue handler; its ack/retry state. */
async function deliver(batchMessages: MessageBatchMessage[], bindings: Cloudflare.Env = env): Promise<QueueResult> {
  const batch = createMessageBatch(QUEUE, batchMessages);
  const ctx = createExecutionContext();
  await handler.queue?.(batch, bindings, ctx);
  return getQueueResult(batch, ctx);
}

const ACKED = { ackAll: true, retryBatch: { retry: false }, explicitAcks: [], retryMessages: [] };
const RETRIED = { ackAll: false, retryBatch: { retry: true }, explicitAcks: [], retryMessages: [] };

/** Appends behind the Worker's back (no run, no wake-up sent): the positions. */
async function append(events: readonly { account: string; amount: number }[]): Promise<number[]> {
  const { results } = await env.DB.prepare(
    "INSERT INTO events (account, amount) SELECT value ->> 'account', value ->> 'amount' FROM json_each(?1) ORDER BY key RETURNING position",
  )
    .bind(JSON.stringify(events))
    .all<{ position: number }>();
  return results.map((row) => row.position).sort((a, b) => a - b);
}

/** `count` events over a few accounts. */
function some(count: number, tag: string): { account: string; amount: number }[] {
  return Array.from({ length: count }, (_, i) => ({ account: `${tag}-${i % 4}`, amount: (i % 7) + 1 }));
}

interface ReadModel {
  balances: unknown[];
  dailyTotals: unknown[];
  checkpoints: unknown[];
}

/** The read models and checkpoints, as stored. */
async function stored(): Promise<ReadModel> {
  const [balances, dailyTotals, checkpoints] = await env.DB.batch([
    env.DB.prepare("SELECT account, balance, events, last_position FROM balances ORDER BY account"),
    env.DB.prepare("SELECT account, day, total, events, last_position FROM daily_totals ORDER BY account, day"),
    env.DB.prepare("SELECT name, position FROM checkpoints ORDER BY name"),
  ]);
  return { balances: balances?.results ?? [], dailyTotals: dailyTotals?.results ?? [], checkpoints: checkpoints?.results ?? [] };
}

/** What the read models must be with every event up to `upTo` applied exactly once (and none after it). */
async function expected(upTo: number): Promise<ReadModel> {
  const [balances, dailyTotals] = await env.DB.batch([
    env.DB.prepare(
      "SELECT account, SUM(amount) AS balance, COUNT(*) AS events, MAX(position) AS last_position FROM events WHERE position <= ?1 GROUP BY 1 ORDER BY 1",
    ).bind(upTo),
    env.DB.prepare(
      "SELECT account, substr(recorded_at, 1, 10) AS day, SUM(amount) AS total, COUNT(*) AS events, MAX(position) AS last_position " +
        "FROM events WHERE position <= ?1 GROUP BY 1, 2 ORDER BY 1, 2",
    ).bind(upTo),
  ]);
  const checkpoints = upTo === 0 ? [] : [{ name: "balances", position: upTo }, { name: "daily-totals", position: upTo }];
  return { balances: balances?.results ?? [], dailyTotals: dailyTotals?.results ?? [], checkpoints };
}

/** A checkpoint's position (0 when there is none). */
async function checkpoint(name: string): Promise<number> {
  return (await env.DB.prepare("SELECT position FROM checkpoints WHERE name = ?1").bind(name).first<number>("position")) ?? 0;
}

async function newest(): Promise<number> {
  return (await env.DB.prepare("SELECT MAX(position) AS n FROM events").first<number>("n")) ?? 0;
}

/** Every event of the log applied exactly once, none skipped, by both projections. */
async function expectExactlyOnce(): Promise<void> {
  const position = await newest();
  expect(position).toBeGreaterThan(0);
  expect(await stored()).toEqual(await expected(position));
}

/** Whether a D1 call is part of a projection run (its lease, or a write of the read models), not the consumer's check. */
const isRun = (sql: readonly string[]): boolean => sql.some((text) => /projection_leases|INSERT INTO (balances|daily_totals)/.test(text));

beforeEach(resetExample);

describe("the queue consumer: a message wakes the projections, it carries no events", () => {
  it("a batch runs the projections once: every event applied exactly once, and the batch acked", async () => {
    const first = await append(some(150, "ana")); // more than one projection batch of 100
    const second = await append(some(30, "ben"));
    const third = await append(some(5, "ana"));
    expect(await stored()).toEqual(await expected(0)); // nothing projected yet
    expect(await deliver(wakes([first.at(-1) ?? 0, second.at(-1) ?? 0, third.at(-1) ?? 0]))).toMatchObject(ACKED);
    await expectExactlyOnce();
  });

  it("the same batch redelivered applies nothing twice, and is acked after one check, without a run", async () => {
    await append(some(40, "cy"));
    const batch = wakes([await newest()]);
    expect(await deliver(batch)).toMatchObject(ACKED);
    const once = await stored();
    await expectExactlyOnce();

    const counted = countD1(env.DB);
    for (const again of [redelivered(batch), redelivered(redelivered(batch))]) {
      expect(await deliver(again, { ...env, DB: counted.db })).toMatchObject(ACKED);
    }
    expect(await stored()).toEqual(once);
    expect(counted.calls.filter((call) => isRun(call.sql))).toEqual([]); // no lease taken, nothing written
    expect(counted.calls.length).toBeLessThanOrEqual(4); // two checks (the checkpoints, and the first event up to the position not yet applied): 1 or 2 round trips each
  });

  it("reordered batches, later positions first: every event applied exactly once, none skipped", async () => {
    const [a, b, c] = [await append(some(20, "dee")), await append(some(20, "eli")), await append(some(20, "dee"))];
    const [pa, pb, pc] = [a.at(-1) ?? 0, b.at(-1) ?? 0, c.at(-1) ?? 0];

    // The latest append's message first, with an earlier one behind it in the same batch: one run applies the whole log.
    expect(await deliver(wakes([pc, pa]))).toMatchObject(ACKED);
    await expectExactlyOnce();
    const applied = await stored();

    // The middle append's message, late: its position is already applied, so it applies nothing more (and takes no run).
    const counted = countD1(env.DB);
    expect(await deliver(wakes([pb]), { ...env, DB: counted.db })).toMatchObject(ACKED);
    expect(counted.calls.filter((call) => isRun(call.sql))).toEqual([]);
    expect(await stored()).toEqual(applied);

    // A new append, then a stale batch naming only applied positions: acked with nothing more applied;
    // the new events wait for their own message (or the cron), which applies them, and only them.
    const d = await append(some(10, "fay"));
    expect(await deliver(wakes([pa, pb]))).toMatchObject(ACKED);
    expect(await stored()).toEqual(applied);
    expect(await deliver(wakes([pb, d.at(-1) ?? 0, pa]))).toMatchObject(ACKED);
    await expectExactlyOnce();
  });

  it("a run that fails is retried, not acked; a later delivery completes it, exactly once", async () => {
    await append(some(150, "gus"));
    const batch = wakes([await newest()]);
    // Every commit of balances fails (D1 rejects it: nothing applied); daily-totals goes on alone.
    const faulty = injectFaults(env.DB);
    faulty.inject({ sql: /^INSERT INTO balances/, message: "D1_ERROR: injected failure", times: Infinity });
    const error = vi.spyOn(console, "error").mockImplementation(() => undefined);
    expect(await deliver(batch, { ...env, DB: faulty.db })).toMatchObject(RETRIED);
    expect(faulty.faults.length).toBeGreaterThan(0);
    expect(error).toHaveBeenCalledWith("wake-up run failed: retrying", expect.any(ProjectionGroupError));
    error.mockRestore();
    // What the failed run committed, it committed once: each read model is the log up to its own checkpoint.
    const now = await stored();
    expect(await checkpoint("balances")).toBe(0);
    expect(now.balances).toEqual([]);
    expect(now.dailyTotals).toEqual((await expected(await checkpoint("daily-totals"))).dailyTotals);

    expect(await deliver(redelivered(batch))).toMatchObject(ACKED);
    await expectExactlyOnce();
  });

  it("a D1 outage (every call fails, the check too) is retried with nothing written; a later delivery completes it", async () => {
    await append(some(20, "hana"));
    const batch = wakes([await newest()]);
    const faulty = injectFaults(env.DB);
    faulty.inject({ message: "D1_ERROR: injected outage", times: Infinity });
    const error = vi.spyOn(console, "error").mockImplementation(() => undefined);
    expect(await deliver(batch, { ...env, DB: faulty.db })).toMatchObject(RETRIED);
    expect(faulty.calls).toHaveLength(1); // the check, refused: no run was started
    error.mockRestore();
    expect(await stored()).toEqual(await expected(0));

    expect(await deliver(redelivered(batch))).toMatchObject(ACKED);
    await expectExactlyOnce();
  });

  it("a commit whose response is lost (D1 ran it) is not applied again, by the run or by a redelivery", async () => {
    await append(some(150, "ines"));
    const batch = wakes([await newest()]);
    const faulty = injectFaults(env.DB);
    faulty.inject({ sql: /^INSERT INTO balances/, timing: "after" }); // a dropped connection: transient, D1 committed
    const result = await deliver(batch, { ...env, DB: faulty.db });
    expect(faulty.faults).toHaveLength(1);
    expect(result).toMatchObject(ACKED); // the run's conditional checkpoints told it the batch was in
    await expectExactlyOnce();
    expect(await deliver(redelivered(batch))).toMatchObject(ACKED);
    await expectExactlyOnce();
  });

  it("a retry waits longer with each attempt: 2, 4, 8 … seconds, at most a minute", async () => {
    expect([1, 2, 3, 4, 5, 6, 7, 100].map(retryDelay)).toEqual([2, 4, 8, 16, 32, 60, 60, 60]);
    await append(some(3, "hal"));
    const faulty = injectFaults(env.DB);
    faulty.inject({ sql: /^INSERT INTO balances/, message: "D1_ERROR: injected failure", times: Infinity });
    const error = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const batch = createMessageBatch(QUEUE, wakes([await newest()]).map((message) => ({ ...message, attempts: 3 })));
    const retryAll = vi.spyOn(batch, "retryAll");
    const ctx = createExecutionContext();
    await handler.queue?.(batch, { ...env, DB: faulty.db }, ctx);
    expect(await getQueueResult(batch, ctx)).toMatchObject(RETRIED);
    expect(retryAll).toHaveBeenCalledWith({ delaySeconds: 8 });
    error.mockRestore();
  });

  it("a run that finds another run's lease is retried (the work is not done yet), and acked once a later delivery sees it done", async () => {
    await env.DB.prepare("INSERT INTO projection_leases (name, holder, expires_at) VALUES (?1, 'another-run', 9e15)").bind(LEDGER_PROJECTIONS).run();
    await append(some(12, "ivy"));
    const batch = wakes([await newest()]);
    const log = vi.spyOn(console, "log").mockImplementation(() => undefined);
    expect(await deliver(batch)).toMatchObject(RETRIED);
    expect(log).toHaveBeenCalledWith("projections behind the wake-ups (run ended: yielded): retrying");
    log.mockRestore();
    expect(await stored()).toEqual(await expected(0));

    await env.DB.prepare("DELETE FROM projection_leases").run(); // the other run is over
    expect(await deliver(redelivered(batch))).toMatchObject(ACKED);
    await expectExactlyOnce();
  });

  it("a message that is not a wake-up still wakes the projections, and is acked", async () => {
    await append(some(5, "jo"));
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    expect(await deliver(messages(["hello", { position: -1 }, null]))).toMatchObject(ACKED);
    expect(warn).toHaveBeenCalledWith("3 of 3 messages are not wake-ups: running without a position to skip on");
    warn.mockRestore();
    await expectExactlyOnce();
  });
});

describe("the producer: an append whose own run does not get past it sends a wake-up", () => {
  /** A stand-in for the queue binding that records what is sent, and whether the position it names is in the log by then. */
  function recordingQueue(): { queue: Queue<Wake>; sent: Wake[]; visible: boolean[] } {
    const sent: Wake[] = [];
    const visible: boolean[] = [];
    const queue = {
      async send(body: Wake) {
        sent.push(body);
        visible.push((await env.DB.prepare("SELECT 1 AS found FROM events WHERE position = ?1").bind(body.position).first("found")) === 1);
        return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0, oldestMessageTimestamp: 0 } } };
      },
    };
    return { queue: queue as unknown as Queue<Wake>, sent, visible };
  }

  async function post(body: unknown, bindings: Cloudflare.Env): Promise<Response> {
    const ctx = createExecutionContext();
    const init: RequestInit = { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } };
    const request = new Request("http://example.test/events", init) as Parameters<typeof worker.fetch>[0];
    // The queue producer is what the Worker does without a daemon: appends notify the daemon when it is bound.
    const response = await worker.fetch(request, { ...bindings, LEDGER_DAEMON: undefined }, ctx);
    await waitOnExecutionContext(ctx);
    return response;
  }

  const holdLease = (): Promise<D1Result> =>
    env.DB.prepare("INSERT INTO projection_leases (name, holder, expires_at) VALUES (?1, 'another-run', 9e15)").bind(LEDGER_PROJECTIONS).run();

  it("an append its own run projects sends nothing", async () => {
    const { queue, sent } = recordingQueue();
    expect((await post([{ account: "kai", amount: 5 }], { ...env, LEDGER_WAKE: queue })).status).toBe(201);
    expect(sent).toEqual([]);
    await expectExactlyOnce();
  });

  it("its run yielding to another's lease: one message per append, its newest position only, sent once the events are in the log; delivered, it gets them applied", async () => {
    await holdLease(); // another run holds the lease (and may never finish): the appends' own runs yield
    const { queue, sent, visible } = recordingQueue();
    const bindings = { ...env, LEDGER_WAKE: queue };
    const response = await post(
      [
        { account: "kai", amount: 5 },
        { account: "lou", amount: 7 },
        { account: "kai", amount: -2 },
      ],
      bindings,
    );
    expect(response.status).toBe(201);
    const { appended } = await response.json<{ appended: number[] }>();
    expect(sent).toEqual([{ position: Math.max(...appended) }]); // the position: never the events
    expect(visible).toEqual([true]);
    await post({ account: "kai", amount: 1 }, bindings);
    expect(sent).toHaveLength(2);
    expect(await stored()).toEqual(await expected(0)); // nothing projected yet

    await env.DB.prepare("DELETE FROM projection_leases").run(); // the other run is gone
    expect(await deliver(wakes(sent.map((wake) => wake.position).reverse()))).toMatchObject(ACKED);
    await expectExactlyOnce();
  });

  it("its run failing: a wake-up is sent, and its delivery gets the events applied", async () => {
    const { queue, sent } = recordingQueue();
    const faulty = injectFaults(env.DB);
    faulty.inject({ sql: /^INSERT INTO balances/, message: "D1_ERROR: injected failure", times: Infinity });
    const error = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const response = await post({ account: "lou", amount: 4 }, { ...env, DB: faulty.db, LEDGER_WAKE: queue });
    expect(response.status).toBe(201);
    expect(error).toHaveBeenCalledWith("projection failed", expect.any(ProjectionGroupError));
    error.mockRestore();
    const { appended } = await response.json<{ appended: number[] }>();
    expect(sent).toEqual([{ position: appended[0] }]);
    expect(await checkpoint("balances")).toBe(0);

    expect(await deliver(wakes(sent.map((wake) => wake.position)))).toMatchObject(ACKED);
    await expectExactlyOnce();
  });

  it("a failed send is logged, not the append's failure", async () => {
    await holdLease();
    const queue = { send: () => Promise.reject(new Error("queue unavailable")) } as unknown as Queue<Wake>;
    const error = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const response = await post({ account: "max", amount: 3 }, { ...env, LEDGER_WAKE: queue });
    expect(response.status).toBe(201);
    expect(error).toHaveBeenCalledWith("wake-up not sent", expect.any(Error));
    error.mockRestore();
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM events").first<number>("n")) ?? 0).toBe(1);
  });
});
