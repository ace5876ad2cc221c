import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { getTableConfig } from "drizzle-orm/sqlite-core";
import { beforeEach, describe, expect, it } from "vitest";
import { ProjectionGroupError } from "../../src/index.js";
import { countD1 } from "../../src/testing.js";
import { DAILY_TOTALS, dailyTotals, resetDailyTotals } from "../src/daily-totals.js";
import { BALANCES, balancesRunner, catchUp, LEDGER_PROJECTIONS } from "../src/ledger.js";
import worker from "../src/worker.js";
import { settleLedger } from "./daemon.js";
import { resetExample } from "./reset.js";

// The daily-totals projection (written with Drizzle) and how it runs with
// balances: one group, one read and one commit per batch for both.

const TOKEN = "test-admin-token-0123456789abcdef";

/** Sends a request through the Worker and waits for its background work (the projections). */
async function send(path: string, init: RequestInit = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const request = new Request(`http://example.test${path}`, init) as Parameters<typeof worker.fetch>[0];
  const response = await worker.fetch(request, env, ctx);
  await waitOnExecutionContext(ctx);
  await settleLedger();
  return response;
}

async function append(events: { account: string; amount: number } | { account: string; amount: number }[]): Promise<number[]> {
  const response = await send("/events", { method: "POST", body: JSON.stringify(events), headers: { "content-type": "application/json" } });
  expect(response.status).toBe(201);
  return (await response.json<{ appended: number[] }>()).appended;
}

/** Appends behind the Worker's back (no run is started), with the given recorded_at times. */
async function insert(events: readonly { account: string; amount: number; at: string }[]): Promise<void> {
  await env.DB.prepare(
    "INSERT INTO events (account, amount, recorded_at) SELECT value ->> 'account', value ->> 'amount', value ->> 'at' FROM json_each(?1) ORDER BY key",
  )
    .bind(JSON.stringify(events))
    .run();
}

/** The cron: it pokes the daemon, whose runs are then settled. */
async function scheduled(): Promise<void> {
  await worker.scheduled(createScheduledController({ cron: "* * * * *" }), env);
  await settleLedger();
}

interface Row {
  account: string;
  day: string;
  total: number;
  events: number;
  last_position: number;
}

/** The read model, and what it must be: every event counted once, per account and UTC day of recorded_at. */
async function dailyTotalsAndExpected(): Promise<{ stored: Row[]; expected: Row[] }> {
  const [stored, expected] = await env.DB.batch<Row>([
    env.DB.prepare("SELECT account, day, total, events, last_position FROM daily_totals ORDER BY account, day"),
    env.DB.prepare(
      "SELECT account, substr(recorded_at, 1, 10) AS day, SUM(amount) AS total, COUNT(*) AS events, MAX(position) AS last_position " +
        "FROM events GROUP BY 1, 2 ORDER BY 1, 2",
    ),
  ]);
  return { stored: stored?.results ?? [], expected: expected?.results ?? [] };
}

async function expectExactlyOnce(): Promise<void> {
  const { stored, expected } = await dailyTotalsAndExpected();
  expect(stored.length).toBeGreaterThan(0);
  expect(stored).toEqual(expected);
  const { results: balances } = await env.DB.prepare(
    "SELECT b.account FROM balances AS b JOIN (SELECT account, SUM(amount) AS balance, COUNT(*) AS events FROM events GROUP BY 1) AS e " +
      "USING (account) WHERE b.balance IS NOT e.balance OR b.events IS NOT e.events",
  ).all();
  expect(balances).toEqual([]);
}

async function checkpoint(name: string): Promise<number | null> {
  return env.DB.prepare("SELECT position FROM checkpoints WHERE name = ?1").bind(name).first<number>("position");
}

async function newest(): Promise<number> {
  return (await env.DB.prepare("SELECT MAX(position) AS n FROM events").first<number>("n")) ?? 0;
}

beforeEach(resetExample);

describe("the daily-totals projection", () => {
  it("migration 0006 creates the table the Drizzle schema describes", async () => {
    const { results } = await env.DB.prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info('daily_totals') ORDER BY cid").all<{
      name: string;
      type: string;
      notnull: number;
      pk: number;
    }>();
    const config = getTableConfig(dailyTotals);
    const primaryKey = config.primaryKeys[0]?.columns.map((column) => column.name) ?? [];
    expect(config.name).toBe("daily_totals");
    expect(results).toEqual(
      config.columns.map((column) => ({
        name: column.name,
        type: column.getSQLType().toUpperCase(),
        notnull: column.notNull ? 1 : 0,
        pk: primaryKey.indexOf(column.name) + 1,
      })),
    );
  });

  it("sums each account's events per UTC day, exactly once, through appends, overlapping runs and the cron", async () => {
    await Promise.all([
      append([
        { account: "alice", amount: 5 },
        { account: "bob", amount: 7 },
      ]),
      append({ account: "alice", amount: -2 }),
      append([{ account: "carol", amount: 1 }]),
    ]);
    // Events on either side of midnight UTC, behind the Worker's back: only the cron projects them.
    await insert([
      { account: "alice", amount: 10, at: "2026-01-01T23:59:59.999Z" },
      { account: "alice", amount: 20, at: "2026-01-02T00:00:00.000Z" },
      { account: "alice", amount: 3, at: "2026-01-02T08:00:00.000Z" },
      { account: "bob", amount: -4, at: "2026-01-01T12:00:00.000Z" },
    ]);
    await scheduled();
    await Promise.all([scheduled(), scheduled(), catchUp(env.DB)]); // overlapping runs: nothing new, nothing counted twice
    await expectExactlyOnce();
    const { stored } = await dailyTotalsAndExpected();
    expect(stored.filter((row) => row.day.startsWith("2026-01")).map(({ account, day, total, events }) => ({ account, day, total, events }))).toEqual([
      { account: "alice", day: "2026-01-01", total: 10, events: 1 },
      { account: "alice", day: "2026-01-02", total: 23, events: 2 },
      { account: "bob", day: "2026-01-01", total: -4, events: 1 },
    ]);
    const position = await newest();
    expect(await checkpoint(DAILY_TOTALS)).toBe(position);
    expect(await checkpoint(BALANCES)).toBe(position);
  });

  it("GET /daily-totals/:account lists the account's days in order, paged by day", async () => {
    await insert([
      { account: "dan", amount: 1, at: "2026-03-01T10:00:00.000Z" },
      { account: "dan", amount: 2, at: "2026-03-01T11:00:00.000Z" },
      { account: "dan", amount: 4, at: "2026-03-03T00:00:00.000Z" },
      { account: "dan", amount: 8, at: "2026-03-02T00:00:00.000Z" },
      { account: "eve", amount: 9, at: "2026-03-01T00:00:00.000Z" },
    ]);
    await append({ account: "dan", amount: 16 }); // its run projects the events above too
    const today = new Date().toISOString().slice(0, 10);
    const all = await send("/daily-totals/dan");
    expect(all.status).toBe(200);
    expect(all.headers.get("cache-control")).toBe("no-store");
    await expect(all.json()).resolves.toEqual({
      account: "dan",
      days: [
        { day: "2026-03-01", total: 3, events: 2 },
        { day: "2026-03-02", total: 8, events: 1 },
        { day: "2026-03-03", total: 4, events: 1 },
        { day: today, total: 16, events: 1 },
      ],
    });
    await expect((await send("/daily-totals/dan?after=2026-03-01&limit=2")).json()).resolves.toEqual({
      account: "dan",
      days: [
        { day: "2026-03-02", total: 8, events: 1 },
        { day: "2026-03-03", total: 4, events: 1 },
      ],
    });
    await expect((await send(`/daily-totals/dan?after=${today}`)).json()).resolves.toEqual({ account: "dan", days: [] }); // the end of the pages
    await expect((await send("/daily-totals/eve")).json()).resolves.toEqual({ account: "eve", days: [{ day: "2026-03-01", total: 9, events: 1 }] });

    const nobody = await send("/daily-totals/nobody");
    expect(nobody.status).toBe(404);
    await expect(nobody.json()).resolves.toEqual({ error: "no such account" });
    for (const [path, status] of [
      ["/daily-totals/dan?after=March", 400],
      ["/daily-totals/dan?after=2026-3-1", 400],
      ["/daily-totals/dan?limit=0", 400],
      ["/daily-totals/a%20b", 400],
      ["/daily-totals/%E0%A4%A", 400],
      ["/daily-totals/dan/x", 404],
    ] as const) {
      const response = await send(path);
      expect(response.status, path).toBe(status);
      expect(Object.keys(await response.json<object>()), path).toEqual(["error"]);
    }
    const post = await send("/daily-totals/dan", { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    const head = await send("/daily-totals/dan", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    expect(await (await send("/")).text()).toContain("GET  /daily-totals/:account");
  });

  it("each batch commits both projections in one round trip: about the round trips of balances alone", async () => {
    const events = Array.from({ length: 250 }, (_, i) => ({ account: `acct-${i % 7}`, amount: i + 1, at: `2026-02-0${1 + (i % 3)}T12:00:00.000Z` }));
    await insert(events);

    const counted = countD1(env.DB);
    const summary = await catchUp(counted.db);
    expect(summary).toMatchObject({ name: LEDGER_PROJECTIONS, batches: 3, ended: "caughtUp" });
    expect(summary.projections.map(({ name, events, batches }) => ({ name, events, batches }))).toEqual([
      { name: BALANCES, events: 250, batches: 3 },
      { name: DAILY_TOTALS, events: 250, batches: 3 },
    ]);
    // The group's metrics record the run in the run log: one round trip after the run, apart from the projections'.
    const logged = counted.calls.filter((call) => call.sql.some((sql) => sql.startsWith("INSERT INTO projection_runs")));
    expect(logged).toHaveLength(1);
    const group = counted.calls.filter((call) => !logged.includes(call));
    // Every round trip that writes a read model writes both, with both checkpoints: one per batch of 100, 100 and 50.
    const writes = group.filter((call) => call.sql.some((sql) => /^INSERT INTO balances|^insert into "daily_totals"/.test(sql)));
    expect(writes).toHaveLength(3);
    for (const call of writes) {
      expect(call.kind).toBe("batch");
      expect(call.sql.filter((sql) => sql.startsWith("INSERT INTO balances"))).toHaveLength(1);
      expect(call.sql.filter((sql) => sql.startsWith('insert into "daily_totals"'))).toHaveLength(1);
    }
    await expectExactlyOnce();

    // The same log projected by the balances runner alone: as many round trips.
    await env.DB.batch([env.DB.prepare("DELETE FROM balances"), env.DB.prepare("DELETE FROM checkpoints")]);
    counted.clear();
    const alone = await balancesRunner(counted.db).run();
    expect(alone).toMatchObject({ events: 250, batches: 3, caughtUp: true });
    // As many round trips per batch; at most one more per run: the group lets go of its lease in a round trip of its
    // own after the last commit, where the runner rides it on that commit. Two runners would take twice the round trips.
    expect(counted.calls.filter((call) => call.sql.some((sql) => sql.startsWith("INSERT INTO balances")))).toHaveLength(3);
    expect(group.length).toBeLessThanOrEqual(counted.calls.length + 1);
  });

  it("one lease for the group: a run while another holds it yields at once and projects nothing", async () => {
    await env.DB.prepare("INSERT INTO projection_leases (name, holder, expires_at) VALUES (?1, 'another-run', 9e15)").bind(LEDGER_PROJECTIONS).run();
    await insert([{ account: "fay", amount: 2, at: "2026-04-01T00:00:00.000Z" }]);
    const counted = countD1(env.DB);
    const summary = await catchUp(counted.db);
    expect(summary).toMatchObject({ ended: "yielded", batches: 0 });
    expect(summary.projections.map((member) => member.ended)).toEqual(["yielded", "yielded"]);
    expect(counted.calls).toHaveLength(1);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM daily_totals").first("n")).toBe(0);
    await env.DB.prepare("DELETE FROM projection_leases").run();
    await scheduled();
    await expectExactlyOnce();
  });

  it("added to a running ledger, it catches up alone from the first event while balances stays put", async () => {
    await insert(Array.from({ length: 130 }, (_, i) => ({ account: `old-${i % 3}`, amount: 1, at: "2025-12-31T00:00:00.000Z" })));
    await balancesRunner(env.DB).run(); // before daily-totals existed: balances alone is up to date
    const position = await newest();
    expect(await checkpoint(DAILY_TOTALS)).toBeNull();
    const summary = await catchUp(env.DB);
    expect(summary.projections.map(({ name, from, to, events }) => ({ name, from, to, events }))).toEqual([
      { name: BALANCES, from: position, to: position, events: 0 },
      { name: DAILY_TOTALS, from: 0, to: position, events: 130 },
    ]);
    await expectExactlyOnce();
  });

  it("an admin reset of balances rebuilds balances alone: daily totals are not counted again", async () => {
    await append([
      { account: "gil", amount: 3 },
      { account: "hana", amount: 9 },
    ]);
    await append({ account: "gil", amount: 4 });
    const before = await dailyTotalsAndExpected();
    await env.DB.prepare("UPDATE balances SET balance = 999").run(); // a corrupted read model
    const response = await send("/admin/projections/balances/reset", { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } });
    expect(response.status).toBe(202);
    await expectExactlyOnce();
    expect(await dailyTotalsAndExpected()).toEqual(before);
  });

  it("a reset of daily-totals rebuilds it alone from the log; balances waits", async () => {
    await append([
      { account: "lou", amount: 2 },
      { account: "max", amount: 5 },
    ]);
    await insert([{ account: "lou", amount: 7, at: "2026-06-01T00:00:00.000Z" }]);
    await scheduled();
    const before = await dailyTotalsAndExpected();
    await env.DB.prepare("UPDATE daily_totals SET total = 999").run(); // a corrupted read model
    await resetDailyTotals(env.DB);
    expect(await checkpoint(DAILY_TOTALS)).toBeNull();
    const summary = await catchUp(env.DB);
    expect(summary.projections.map(({ name, events }) => ({ name, events }))).toEqual([
      { name: BALANCES, events: 0 },
      { name: DAILY_TOTALS, events: 3 },
    ]);
    expect(await dailyTotalsAndExpected()).toEqual(before);
    await expectExactlyOnce();
  });

  it("events of an account on hold: balances parks them, daily totals counts them", async () => {
    await env.DB.prepare("INSERT INTO holds (account) VALUES ('ivan')").run();
    const [position] = await append([
      { account: "ivan", amount: 6 },
      { account: "jill", amount: 1 },
    ]);
    expect((await send("/balances/ivan")).status).toBe(404);
    await expect((await send("/daily-totals/ivan")).json()).resolves.toMatchObject({ days: [{ total: 6, events: 1 }] });
    const { results } = await env.DB.prepare("SELECT name, position FROM parked_events").all();
    expect(results).toEqual([{ name: BALANCES, position }]);
  });

  it("an event whose recorded_at is not an ISO time stops daily-totals only; balances goes on", async () => {
    await insert([
      { account: "kai", amount: 1, at: "2026-05-01T00:00:00.000Z" },
      { account: "kai", amount: 2, at: "yesterday" },
    ]);
    const error = await catchUp(env.DB).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(ProjectionGroupError);
    const { projections } = (error as ProjectionGroupError).summary;
    expect(projections.map(({ name, ended }) => ({ name, ended }))).toEqual([
      { name: BALANCES, ended: "caughtUp" },
      { name: DAILY_TOTALS, ended: "failed" },
    ]);
    expect(String(projections[1]?.error)).toContain('recorded_at "yesterday" is not an ISO time');
    expect(await checkpoint(BALANCES)).toBe(await newest());
    expect(await checkpoint(DAILY_TOTALS)).toBeNull(); // the batch held the bad event: nothing of it committed
    expect(await env.DB.prepare("SELECT balance FROM balances WHERE account = 'kai'").first("balance")).toBe(3);
  });
});
