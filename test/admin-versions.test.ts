import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { adminHandler, bearerToken, type AdminProjection } from "../src/admin.js";
import { CheckpointRangeError, CheckpointTypeError, D1CheckpointStore, ProjectionRunner } from "../src/index.js";

// The admin page's Rebuild, Switch, Abandon and Drop (decision 0020), in
// workerd against local D1: the buttons, their routes, and what they refuse.

const TOKEN = "0123456789abcdef0123456789abcdef";
const ORIGIN = "http://app.test";
const db = env.DB;
const bearer = { authorization: `Bearer ${TOKEN}` };

interface Event {
  readonly position: number;
  readonly amount: number;
}

beforeEach(async () => {
  const { results } = await db.prepare("SELECT type, name FROM sqlite_master WHERE name GLOB 'ad_*' AND type IN ('table', 'view')").all<{ type: string; name: string }>();
  await db.batch([
    ...results.map(({ type, name }) => db.prepare(`DROP ${type === "view" ? "VIEW" : "TABLE"} ${name}`)),
    db.prepare("CREATE TABLE ad_events (position INTEGER PRIMARY KEY, amount INTEGER NOT NULL)"),
    db.prepare("CREATE TABLE ad_sum (k TEXT PRIMARY KEY, total INTEGER NOT NULL)"),
    db.prepare("DELETE FROM checkpoints"),
    db.prepare("DELETE FROM projection_versions"),
  ]);
  await db.batch(Array.from({ length: 30 }, (_, i) => db.prepare("INSERT INTO ad_events (position, amount) VALUES (?1, ?1)").bind(i + 1)));
});

function runner(version: number, store: D1CheckpointStore): ProjectionRunner<Event> {
  const table = version === 1 ? "ad_sum" : `ad_sum_v${version}`;
  return new ProjectionRunner<Event>({
    name: "sum",
    version,
    store,
    batchSize: 10,
    eventsQuery: (after, limit) => db.prepare("SELECT position, amount FROM ad_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
    project: (events) => events.map((e) => db.prepare(`INSERT INTO ${table} (k, total) VALUES ('all', ?1) ON CONFLICT (k) DO UPDATE SET total = total + excluded.total`).bind(e.amount * version)),
  });
}

function setUp(extra: AdminProjection = {}, next = 2): { h: (request: Request) => Promise<Response | undefined>; store: D1CheckpointStore; started: string[] } {
  const store = new D1CheckpointStore(db);
  const started: string[] = [];
  const h = adminHandler({
    store,
    auth: bearerToken(TOKEN),
    newest: db.prepare("SELECT MAX(position) FROM ad_events"),
    projections: {
      sum: {
        startRebuild: { version: next, tables: { ad_sum: `ad_sum_v${next}` }, create: [db.prepare(`CREATE TABLE IF NOT EXISTS ad_sum_v${next} (k TEXT PRIMARY KEY, total INTEGER NOT NULL)`)] },
        // Builds the first 10 events of the rebuild, as a first invocation would.
        rebuild: async () => {
          started.push("rebuild");
          await runner(next, store).run({ maxBatches: 1 });
        },
        ...extra,
      },
    },
  });
  return { h, store, started };
}

async function send(h: (request: Request) => Promise<Response | undefined>, path: string, init: RequestInit = {}): Promise<Response> {
  const response = await h(new Request(`${ORIGIN}${path}`, init));
  if (response === undefined) throw new Error(`not handled: ${path}`);
  return response;
}

async function page(h: (request: Request) => Promise<Response | undefined>): Promise<string> {
  const login = await send(h, "/admin/login", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", origin: ORIGIN }, body: `token=${TOKEN}` });
  const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  return (await send(h, "/admin", { headers: { cookie } })).text();
}

function post(h: (request: Request) => Promise<Response | undefined>, path: string): Promise<Response> {
  return send(h, path, { method: "POST", headers: bearer });
}

describe("the admin page's versions", () => {
  it("Rebuild starts the next version beside the live one; Switch stays disabled until it has caught up; then Switch, and Drop of the old one", async () => {
    const { h, store, started } = setUp();
    await runner(1, store).run();
    expect(await page(h)).toContain(`action="/admin/projections/sum/versions"><button type="submit">Rebuild</button>`);

    const start = await post(h, "/admin/projections/sum/versions");
    expect(start.status).toBe(202);
    await expect(start.json()).resolves.toEqual({ rebuilding: "sum", version: 2 });
    expect(started).toEqual(["rebuild"]);

    // Part-built: its progress, Switch disabled, Abandon offered; Rebuild disabled (one rebuild at a time).
    const building = await page(h);
    expect(building).toMatch(/<td>sum@2<\/td><td>v2 building/);
    expect(building).toContain(`action="/admin/projections/sum/versions/2/switch"><button type="submit" disabled title="the rebuild is at 10, behind the live version at 30">Switch</button>`);
    expect(building).toContain(`action="/admin/projections/sum/versions/2/drop"><button type="submit">Abandon</button>`);
    expect(building).toContain(`<button type="submit" disabled title="version 2 is being rebuilt already: switch to it or drop it first">Rebuild</button>`);
    const { projections } = await (await send(h, "/admin/api/projections", { headers: bearer })).json<{ projections: { name: string; rebuild?: { version: number } }[] }>();
    expect(projections.find((p) => p.name === "sum@2")?.rebuild?.version).toBe(2);
    // Refused by the store too, not just greyed out.
    const early = await post(h, "/admin/projections/sum/versions/2/switch");
    expect(early.status).toBe(409);
    await expect(early.json()).resolves.toMatchObject({ error: expect.stringMatching(/behind the live checkpoint/) as unknown });

    await runner(2, store).run();
    expect(await page(h)).toContain(`action="/admin/projections/sum/versions/2/switch"><button type="submit">Switch</button>`);
    const switched = await post(h, "/admin/projections/sum/versions/2/switch");
    expect(switched.status).toBe(200);
    await expect(switched.json()).resolves.toEqual({ switched: 2, name: "sum" });
    expect(await db.prepare("SELECT total FROM ad_sum").first("total")).toBe(2 * ((30 * 31) / 2));

    const after = await page(h);
    expect(after).toMatch(/<td>sum<\/td><td>v2 live<\/td>/);
    expect(after).toMatch(/<td>sum@1<\/td><td>v1 retired<\/td>/);
    expect(after).toContain(`action="/admin/projections/sum/versions/1/drop"><button type="submit">Drop</button>`);
    expect((await post(h, "/admin/projections/sum/versions/1/drop")).status).toBe(200);
    expect((await store.versions("sum")).map((v) => `${v.version} ${v.state}`)).toEqual(["2 live"]);
  });

  it("Abandon drops the rebuild; what the records do not allow is a 409, a bad version a 400, an unmanaged projection a 404", async () => {
    const { h, store } = setUp();
    await runner(1, store).run();
    expect((await post(h, "/admin/projections/sum/versions/2/switch")).status).toBe(409);
    expect((await post(h, "/admin/projections/sum/versions")).status).toBe(202);
    const again = await post(h, "/admin/projections/sum/versions");
    expect(again.status).toBe(409);
    await expect(again.json()).resolves.toMatchObject({ error: expect.stringMatching(/version 2 is being rebuilt already/) as unknown });
    expect((await post(h, "/admin/projections/sum/versions/0/switch")).status).toBe(400);
    expect((await post(h, "/admin/projections/sum/versions/x/drop")).status).toBe(400);
    expect((await post(h, "/admin/projections/other/versions")).status).toBe(404);
    expect((await send(h, "/admin/projections/sum/versions/2/drop", { headers: bearer })).status).toBe(405);
    expect((await post(h, "/admin/projections/sum/versions/1/drop")).status).toBe(409); // the live version

    expect((await post(h, "/admin/projections/sum/versions/2/drop")).status).toBe(200);
    expect(await db.prepare("SELECT name FROM sqlite_master WHERE name = 'ad_sum_v2'").first()).toBeNull();
    expect(await page(h)).toContain(">Rebuild</button>");
  });
});

/** Version 1 built, version 2 rebuilt beside it through the page, and switched live: `ad_sum` is a view of `ad_sum_v2` now. */
async function switchedToV2(h: (request: Request) => Promise<Response | undefined>, store: D1CheckpointStore): Promise<void> {
  await runner(1, store).run();
  expect((await post(h, "/admin/projections/sum/versions")).status).toBe(202);
  await runner(2, store).run();
  expect((await post(h, "/admin/projections/sum/versions/2/switch")).status).toBe(200);
}

const TOTAL = (30 * 31) / 2;

describe("Reset after a switch", () => {
  // Defect: a reset hook that deletes from the read name, as the TSDoc showed, fails once the read name is a view, and the page blamed the store (503).
  it("a reset hook that deletes from the read name fails after the switch: a 500 naming the hook with D1's message, not the store's 503", async () => {
    const store = new D1CheckpointStore(db);
    const { h } = setUp({ reset: async () => { await db.batch([db.prepare("DELETE FROM ad_sum"), store.resetStatement("sum")]); } });
    await switchedToV2(h, store);
    const reset = await post(h, "/admin/projections/sum/reset");
    expect(reset.status).toBe(500);
    const { error } = await reset.json<{ error: string }>();
    expect(error).toMatch(/^the reset hook of "sum" failed: D1_ERROR: .*ad_sum.*view/);
    expect((await store.load("sum")).position).toBe(30); // the batch failed as a whole
  });

  it("the documented reset hook clears the live version's own tables (from store.versions) with its checkpoint, and the rebuild projects every event once", async () => {
    const store = new D1CheckpointStore(db);
    const { h } = setUp({
      // As AdminProjection.reset's TSDoc shows it.
      reset: async () => {
        const live = (await store.versions("sum")).find((v) => v.state === "live");
        const tables = Object.values(live?.tables ?? { ad_sum: "ad_sum" });
        await db.batch([...tables.map((table) => db.prepare(`DELETE FROM ${table}`)), store.resetStatement("sum")]);
      },
      rebuild: undefined, // the test runs the runners itself
    });
    await runner(1, store).run();
    await db.prepare("UPDATE ad_sum SET total = -1").run();
    // Before any rebuild: no records, the read name is the table.
    expect((await post(h, "/admin/projections/sum/reset")).status).toBe(202);
    expect(await db.prepare("SELECT COUNT(*) AS n FROM ad_sum").first("n")).toBe(0);
    await runner(1, store).run();
    expect(await db.prepare("SELECT total FROM ad_sum").first("total")).toBe(TOTAL);

    expect((await post(h, "/admin/projections/sum/versions")).status).toBe(202);
    await runner(2, store).run();
    expect((await post(h, "/admin/projections/sum/versions/2/switch")).status).toBe(200);
    await db.prepare("UPDATE ad_sum_v2 SET total = -1").run();
    expect((await post(h, "/admin/projections/sum/reset")).status).toBe(202);
    expect(await db.prepare("SELECT COUNT(*) AS n FROM ad_sum_v2").first("n")).toBe(0);
    expect(await db.prepare("SELECT total FROM ad_sum_v1").first("total")).toBe(TOTAL); // the retired version's table is untouched
    await runner(2, store).run();
    expect(await db.prepare("SELECT total FROM ad_sum").first("total")).toBe(2 * TOTAL);
    expect((await store.load("sum")).position).toBe(30);
  });
});

describe("Rebuild is offered only when it can start", () => {
  // Defect: after a switch to version 2, the page still offered Rebuild of version 2, which the store refuses (409).
  it("once the version it starts is live, Rebuild is disabled with the store's reason, and pressing it anyway is the same 409", async () => {
    const { h, store, started } = setUp();
    await switchedToV2(h, store);
    const text = await page(h);
    expect(text).toMatch(/<td>sum<\/td><td>v2 live<\/td>/);
    expect(text).toContain(`action="/admin/projections/sum/versions"><button type="submit" disabled title="version 2 is the live version">Rebuild</button>`);
    const refused = await post(h, "/admin/projections/sum/versions");
    expect(refused.status).toBe(409);
    await expect(refused.json()).resolves.toEqual({ error: 'rebuild("sum"): version 2 is the live version' });
    expect(started).toEqual(["rebuild"]); // the refused Rebuild ran no rebuild hook
  });

  it("while a version is building, the live row's Rebuild is disabled with the reason; a next version (3) is offered after the switch", async () => {
    const { h, store } = setUp();
    await runner(1, store).run();
    expect((await post(h, "/admin/projections/sum/versions")).status).toBe(202);
    expect(await page(h)).toContain(`<button type="submit" disabled title="version 2 is being rebuilt already: switch to it or drop it first">Rebuild</button>`);
    await runner(2, store).run();
    expect((await post(h, "/admin/projections/sum/versions/2/switch")).status).toBe(200);
    const next = setUp({}, 3);
    expect(await page(next.h)).toContain(`action="/admin/projections/sum/versions"><button type="submit">Rebuild</button>`);
    expect((await post(next.h, "/admin/projections/sum/versions")).status).toBe(202);
    expect((await store.versions("sum")).map((v) => `${v.version} ${v.state}`)).toEqual(["1 retired", "2 live", "3 building"]);
  });

  it("a new version's table that exists with rows, or a version record another tool wrote badly, disables Rebuild with what is wrong; the page stays up", async () => {
    const { h, store } = setUp();
    await runner(1, store).run();
    await db.batch([db.prepare("CREATE TABLE ad_sum_v2 (k TEXT PRIMARY KEY, total INTEGER NOT NULL)"), db.prepare("INSERT INTO ad_sum_v2 VALUES ('old', 1)")]);
    expect(await page(h)).toContain(`<button type="submit" disabled title="a rebuild starts from empty tables, and ad_sum_v2 has rows">Rebuild</button>`);
    const refused = await post(h, "/admin/projections/sum/versions");
    expect(refused.status).toBe(409);
    await expect(refused.json()).resolves.toMatchObject({ error: expect.stringContaining("ad_sum_v2 has rows") as unknown });

    await db.batch([db.prepare("DELETE FROM ad_sum_v2"), db.prepare("INSERT INTO projection_versions (name, version, state, tables, started_at) VALUES ('sum', 1, 'live', 'not json', 0)")]);
    const text = await page(h);
    expect(text).toMatch(/<button type="submit" disabled title="[^"]*tables[^"]*">Rebuild<\/button>/);
  });

  it("without startRebuild there is no Rebuild, Switch, Abandon or Drop; a startRebuild that is still a function is refused when the handler is built", async () => {
    const store = new D1CheckpointStore(db);
    await runner(1, store).run();
    const h = adminHandler({ store, auth: bearerToken(TOKEN), projections: { sum: { reset: () => Promise.resolve() } } });
    const text = await page(h);
    expect(text).toContain(">Reset</button>");
    expect(text).not.toMatch(/>(Rebuild|Switch|Abandon|Drop)<\/button>/);
    expect((await post(h, "/admin/projections/sum/versions")).status).toBe(404);
    const old = { startRebuild: () => store.startRebuild("sum", 2, { tables: { ad_sum: "ad_sum_v2" } }) } as unknown as AdminProjection;
    expect(() => adminHandler({ store, auth: bearerToken(TOKEN), projections: { sum: old } })).toThrow(CheckpointTypeError);
    expect(() => adminHandler({ store, auth: bearerToken(TOKEN), projections: { sum: { startRebuild: { version: 0, tables: { ad_sum: "ad_sum_v2" } } } } })).toThrow(CheckpointRangeError);
    expect(() => adminHandler({ store, auth: bearerToken(TOKEN), projections: { sum: { startRebuild: { version: 2, tables: { ad_sum: "ad_sum" } } } } })).toThrow(/options\.projections\.sum\.startRebuild\.tables\.ad_sum/);
    expect(() => adminHandler({ store, auth: bearerToken(TOKEN), projections: { sum: { startRebuild: { version: 2, tables: { ad_sum: "ad_sum_v2" }, create: "CREATE" as never } } } })).toThrow(CheckpointTypeError);
  });
});
