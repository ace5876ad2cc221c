import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { adminHandler, bearerToken } from "../src/admin.js";
import { D1CheckpointStore, ProjectionRunner } from "../src/index.js";

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

function setUp(): { h: (request: Request) => Promise<Response | undefined>; store: D1CheckpointStore; started: string[] } {
  const store = new D1CheckpointStore(db);
  const started: string[] = [];
  const h = adminHandler({
    store,
    auth: bearerToken(TOKEN),
    newest: db.prepare("SELECT MAX(position) FROM ad_events"),
    projections: {
      sum: {
        startRebuild: async () => {
          started.push("start");
          await store.startRebuild("sum", 2, { tables: { ad_sum: "ad_sum_v2" }, create: [db.prepare("CREATE TABLE IF NOT EXISTS ad_sum_v2 (k TEXT PRIMARY KEY, total INTEGER NOT NULL)")] });
        },
        // Builds the first 10 events of the rebuild, as a first invocation would.
        rebuild: async () => {
          started.push("rebuild");
          await runner(2, store).run({ maxBatches: 1 });
        },
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
    await expect(start.json()).resolves.toEqual({ rebuilding: "sum" });
    expect(started).toEqual(["start", "rebuild"]);

    // Part-built: its progress, Switch disabled, Abandon offered; no second Rebuild.
    const building = await page(h);
    expect(building).toMatch(/<td>sum@2<\/td><td>v2 building/);
    expect(building).toContain(`action="/admin/projections/sum/versions/2/switch"><button type="submit" disabled title="the rebuild is at 10, behind the live version at 30">Switch</button>`);
    expect(building).toContain(`action="/admin/projections/sum/versions/2/drop"><button type="submit">Abandon</button>`);
    expect(building).not.toContain(">Rebuild</button>");
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
