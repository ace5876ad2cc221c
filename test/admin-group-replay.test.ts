import { env } from "cloudflare:workers";
import { beforeEach, expect, it } from "vitest";
import { adminHandler, bearerToken } from "../src/admin.js";
import { D1CheckpointStore, ProjectionGroup, ProjectionRunner, type GroupProjection } from "../src/index.js";

// Replay from the admin page for a projection that runs in a ProjectionGroup.
// A group has no replay: the admin's Replay goes through a ProjectionRunner
// built for that one projection (same name, same project function, same
// store and event source), used only for replay(position). In workerd
// against local D1.

const TOKEN = "0123456789abcdef0123456789abcdef";
const bearer = { authorization: `Bearer ${TOKEN}` };
const db = env.DB;

interface Event {
  readonly position: number;
  readonly account: string;
  readonly amount: number;
  readonly held: number;
}

beforeEach(async () => {
  await db.batch([
    db.prepare("DROP TABLE IF EXISTS gr_events"),
    db.prepare("DROP TABLE IF EXISTS gr_holds"),
    db.prepare("DROP TABLE IF EXISTS gr_totals"),
    db.prepare("CREATE TABLE gr_events (position INTEGER PRIMARY KEY, account TEXT NOT NULL, amount INTEGER NOT NULL)"),
    db.prepare("CREATE TABLE gr_holds (account TEXT PRIMARY KEY)"),
    db.prepare("CREATE TABLE gr_totals (projection TEXT NOT NULL, account TEXT NOT NULL, total INTEGER NOT NULL, applied INTEGER NOT NULL, PRIMARY KEY (projection, account))"),
    db.prepare("DELETE FROM checkpoints"),
    db.prepare("DELETE FROM parked_events"),
  ]);
});

const store = (): D1CheckpointStore => new D1CheckpointStore(db);

/** The one event source of the group and of the replaying runner: each event with whether its account is on hold. */
const eventsQuery = (after: number, limit: number): D1PreparedStatement =>
  db
    .prepare(
      "SELECT e.position, e.account, e.amount, EXISTS (SELECT 1 FROM gr_holds AS h WHERE h.account = e.account) AS held FROM gr_events AS e WHERE e.position > ?1 ORDER BY e.position LIMIT ?2",
    )
    .bind(after, limit);

const UPSERT =
  "INSERT INTO gr_totals (projection, account, total, applied) VALUES (?1, ?2, ?3, 1) ON CONFLICT (projection, account) DO UPDATE SET total = total + excluded.total, applied = applied + 1";

class OnHold extends Error {}

/** "balances" throws on an event of an account on hold, and parks it; "counts" takes every event. */
function projectBalances(events: readonly Event[]): D1PreparedStatement[] {
  for (const event of events) if (event.held === 1) throw new OnHold(`${event.account} is on hold`);
  return events.map((event) => db.prepare(UPSERT).bind("balances", event.account, event.amount));
}
const balances: GroupProjection<Event, readonly D1PreparedStatement[]> = {
  name: "balances",
  project: projectBalances,
  onError: (error) => (error instanceof OnHold ? "park" : "stop"),
};
const counts: GroupProjection<Event, readonly D1PreparedStatement[]> = {
  name: "counts",
  project: (events) => events.map((event) => db.prepare(UPSERT).bind("counts", event.account, 1)),
};

const group = (): ProjectionGroup<Event> => new ProjectionGroup<Event>({ name: "gr", store: store(), batchSize: 10, eventsQuery, projections: [balances, counts] });

/** The runner the admin replays "balances" with: the group member's name, project function, store and event source. */
const balancesRunner = (): ProjectionRunner<Event> => new ProjectionRunner<Event>({ name: "balances", store: store(), batchSize: 10, eventsQuery, project: projectBalances });

async function append(...events: [string, number][]): Promise<void> {
  await db.batch(events.map(([account, amount]) => db.prepare("INSERT INTO gr_events (account, amount) VALUES (?1, ?2)").bind(account, amount)));
}

async function rows(): Promise<string[]> {
  const { results } = await db.prepare("SELECT projection, account, total, applied FROM gr_totals ORDER BY projection, account").all();
  return results.map((row) => `${String(row.projection)} ${String(row.account)} ${String(row.total)} ×${String(row.applied)}`);
}

it("an event the group parked is replayed exactly once by the admin's Replay through a runner of that one projection", async () => {
  const admin = adminHandler({ store: store(), auth: bearerToken(TOKEN), projections: { balances: { replay: (position) => balancesRunner().replay(position) } } });
  const post = async (path: string): Promise<Response> => (await admin(new Request(`http://app.test${path}`, { method: "POST", headers: bearer }))) ?? new Response(null, { status: 599 });

  await db.prepare("INSERT INTO gr_holds (account) VALUES ('bob')").run();
  await append(["ann", 5], ["bob", 7], ["ann", 1]);
  await group().run();
  const listed = await admin(new Request("http://app.test/admin/api/projections/balances/parked", { headers: bearer }));
  await expect(listed?.json()).resolves.toMatchObject({ events: [{ position: 2, error: "bob is on hold" }] });
  expect(await rows()).toEqual(["balances ann 6 ×2", "counts ann 2 ×2", "counts bob 1 ×1"]);

  // Still on hold: the runner's project rejects it again, it stays parked.
  expect((await post("/admin/projections/balances/parked/2/replay")).status).toBe(409);
  await db.prepare("DELETE FROM gr_holds").run();
  const replayed = await post("/admin/projections/balances/parked/2/replay");
  expect(replayed.status).toBe(200);
  await expect(replayed.json()).resolves.toEqual({ replayed: 2, name: "balances" });
  expect(await rows()).toEqual(["balances ann 6 ×2", "balances bob 7 ×1", "counts ann 2 ×2", "counts bob 1 ×1"]);

  // Once: a second Replay finds nothing parked, and the group's next runs never project it again.
  expect((await post("/admin/projections/balances/parked/2/replay")).status).toBe(404);
  await group().run();
  await append(["bob", 3]);
  await group().run();
  expect(await rows()).toEqual(["balances ann 6 ×2", "balances bob 10 ×2", "counts ann 2 ×2", "counts bob 2 ×2"]);
  expect((await store().load("balances")).position).toBe(4);
  expect((await store().load("counts")).position).toBe(4);
});
