import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { adminHandler, bearerToken, type AdminHandlerOptions, type AdminPartition } from "../src/admin.js";
import { D1CheckpointStore } from "../src/index.js";
import { countPrepares } from "./support/orm.js";

// What other tools wrote badly, and hooks that answer junk, never take the
// admin overview down: the healthy rows are listed, the rest reported, in a
// number of queries that does not grow with the number of bad rows.

const TOKEN = "0123456789abcdef0123456789abcdef";
const ORIGIN = "http://app.test";
const bearer = { authorization: `Bearer ${TOKEN}` };

beforeEach(async () => {
  await env.DB.batch([env.DB.prepare("DELETE FROM checkpoints"), env.DB.prepare("DELETE FROM parked_events"), env.DB.prepare("DELETE FROM checkpoint_moves")]);
});

/** `env.DB`, with every statement it prepares counted (each query needs one). */
const countedDb = (): { db: D1Database; prepared: string[] } => countPrepares(env.DB);

function handler(options: Partial<AdminHandlerOptions> = {}, db: D1Database = env.DB): (request: Request) => Promise<Response | undefined> {
  return adminHandler({ store: new D1CheckpointStore(db), auth: bearerToken(TOKEN), ...options });
}

async function send(h: (request: Request) => Promise<Response | undefined>, path: string, init: RequestInit = {}): Promise<Response> {
  const response = await h(new Request(`${ORIGIN}${path}`, init));
  if (response === undefined) throw new Error(`not handled: ${path}`);
  return response;
}

async function session(h: (request: Request) => Promise<Response | undefined>): Promise<string> {
  const response = await send(h, "/admin/login", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", origin: ORIGIN }, body: `token=${TOKEN}` });
  return (response.headers.get("set-cookie") ?? "").split(";", 1)[0] ?? "";
}

type Listed = { name: string; position?: number; corrupt?: string }[];

async function listed(h: (request: Request) => Promise<Response | undefined>): Promise<Listed> {
  const response = await send(h, "/admin/api/projections", { headers: bearer });
  expect(response.status).toBe(200);
  return (await response.json<{ projections: Listed }>()).projections;
}

describe("corrupt checkpoints", () => {
  it("a corrupt checkpoint whose name is over 1,024 bytes is reported, and the rows after it are listed", async () => {
    const long = `m-${"x".repeat(1100)}`;
    await new D1CheckpointStore(env.DB).save("a-good", 1);
    await new D1CheckpointStore(env.DB).save("z-good", 2);
    await env.DB.prepare("INSERT INTO checkpoints (name, position) VALUES (?1, 'abc')").bind(long).run();
    const h = handler({ projections: { "z-good": { reset: () => Promise.resolve() } } });
    expect(await listed(h)).toMatchObject([
      { name: "a-good", position: 1 },
      { name: long, corrupt: "stored position abc" },
      { name: "z-good", position: 2 },
    ]);
    const page = await send(h, "/admin", { headers: { cookie: await session(h) } });
    expect(page.status).toBe(200);
    const text = await page.text();
    expect(text).toContain("corrupt: stored position abc");
    expect(text).toContain("/admin/projections/z-good/reset"); // the Reset button is still there
  });

  it("40 corrupt checkpoints cost no more queries than none", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.save("a-good", 1);
    await store.save("z-good", 2);
    const newest = env.DB.prepare("SELECT 5");
    const clean = countedDb();
    expect(await listed(handler({ newest }, clean.db))).toHaveLength(2);
    await env.DB.batch(Array.from({ length: 40 }, (_, i) => env.DB.prepare("INSERT INTO checkpoints (name, position) VALUES (?1, 'bad')").bind(`c${String(i).padStart(2, "0")}`)));
    const corrupt = countedDb();
    const rows = await listed(handler({ newest }, corrupt.db));
    expect(rows).toHaveLength(42);
    expect(rows.filter((row) => row.corrupt !== undefined)).toHaveLength(40);
    expect(rows.at(-1)).toMatchObject({ name: "z-good", position: 2 });
    expect(corrupt.prepared.length).toBe(clean.prepared.length);
    expect(corrupt.prepared.length).toBeLessThanOrEqual(2);
  });

  it("a stored name that is not valid text is reported as corrupt, by its bytes, between the healthy rows", async () => {
    await new D1CheckpointStore(env.DB).save("a-good", 1);
    await new D1CheckpointStore(env.DB).save("z-good", 2);
    await env.DB.batch([
      env.DB.prepare("INSERT INTO checkpoints (name, position) VALUES (CAST(x'6dff' AS TEXT), 3)"),
      env.DB.prepare("INSERT INTO checkpoints (name, position) VALUES (x'00ff', 4)"),
    ]);
    const rows = await listed(handler());
    expect(rows).toHaveLength(4);
    expect(rows[0]).toMatchObject({ name: "a-good", position: 1 });
    expect(rows.filter((row) => row.corrupt !== undefined).map((row) => row.corrupt)).toEqual([
      "stored name is not valid UTF-8 text (bytes 6DFF)",
      "stored name is a blob, not text (bytes 00FF)",
    ]);
    expect(rows.find((row) => row.name === "z-good")).toMatchObject({ position: 2 });
  });
});

describe("a partitions hook that answers junk", () => {
  async function overview(partitions: () => Promise<readonly AdminPartition[]>): Promise<{ page: Response; text: string; api: unknown }> {
    const h = handler({ partitions });
    const page = await send(h, "/admin", { headers: { cookie: await session(h) } });
    const text = await page.text();
    const api = await (await send(h, "/admin/api/partitions", { headers: bearer })).json();
    return { page, text, api };
  }

  it.each([
    ["a string", "not an array"],
    ["null", null],
    ["an array-like object", { length: 1 }],
  ])("an answer that is %s is shown as the hook's error, not a 500", async (_label, answer: unknown) => {
    const { page, text, api } = await overview(() => Promise.resolve(answer as never));
    expect(page.status).toBe(200);
    expect(text).toContain("options.partitions must answer an array of { name, statuses }");
    expect(api).toMatchObject({ partitions: [{ name: "(the partitions hook)", statuses: [], error: expect.stringContaining("options.partitions") as string }] });
  });

  it("a partition whose name is not a string, that is not an object, or whose statuses is not a function, is shown with the hook's error; the others are listed", async () => {
    const good = { name: "history/alice", statuses: () => Promise.resolve([{ name: "history", found: true, position: 3, lag: 0, movedAt: undefined, sinceMovedMs: undefined, parked: 0 }]) };
    const { page, text, api } = await overview(() => Promise.resolve([{ name: 7, statuses: () => Promise.resolve([]) }, null, { name: "history/bob" }, good] as never));
    expect(page.status).toBe(200);
    expect(text).toContain("history/alice");
    expect(text).toContain("options.partitions[0].name must be a string, got number");
    expect(text).toContain("options.partitions[1] must be an object with name and statuses, got null");
    expect(text).toContain("options.partitions[2].statuses must be a function, got undefined");
    expect(api).toMatchObject({ partitions: [{ name: "(partition 0)" }, { name: "(partition 1)" }, { name: "history/bob" }, { name: "history/alice", statuses: [{ name: "history", position: 3 }] }] });
  });

  it("a partition's statuses that are not an array, or hold junk, are its error", async () => {
    const { page, text } = await overview(() =>
      Promise.resolve([
        { name: "p/one", statuses: () => Promise.resolve("junk" as never) },
        { name: "p/two", statuses: () => Promise.resolve([null] as never) },
      ]),
    );
    expect(page.status).toBe(200);
    expect(text).toContain("statuses() of p/one must answer an array of statuses");
    expect(text).toContain("statuses() of p/two answered a status that is not an object");
  });
});
