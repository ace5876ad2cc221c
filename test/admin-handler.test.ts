import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { adminHandler, bearerToken, type AdminHandlerOptions, type AdminAuth } from "../src/admin.js";
import { CheckpointRangeError, CheckpointTypeError, D1CheckpointStore, ProjectionError } from "../src/index.js";

// The admin handler of the ./admin export, mounted as a user mounts it, in
// workerd against local D1: JSON and HTML, sessions, CSRF, corrupt rows.

const TOKEN = "0123456789abcdef0123456789abcdef";
const ORIGIN = "http://app.test";

beforeEach(async () => {
  await env.DB.batch([
    env.DB.prepare("DELETE FROM checkpoints"),
    env.DB.prepare("DELETE FROM parked_events"),
    env.DB.prepare("DELETE FROM checkpoint_moves"),
    env.DB.prepare("CREATE TABLE IF NOT EXISTS admin_events (position INTEGER PRIMARY KEY, at INTEGER NOT NULL)"),
    env.DB.prepare("DELETE FROM admin_events"),
  ]);
});

function handler(options: Partial<AdminHandlerOptions> = {}): (request: Request) => Promise<Response | undefined> {
  return adminHandler({ store: new D1CheckpointStore(env.DB), auth: bearerToken(TOKEN), ...options });
}

async function send(h: (request: Request) => Promise<Response | undefined>, path: string, init: RequestInit = {}): Promise<Response> {
  const response = await h(new Request(`${ORIGIN}${path}`, init));
  if (response === undefined) throw new Error(`not handled: ${path}`);
  return response;
}

const bearer = { authorization: `Bearer ${TOKEN}` };

async function login(h: (request: Request) => Promise<Response | undefined>): Promise<string> {
  const response = await send(h, "/admin/login", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", origin: ORIGIN },
    body: `token=${TOKEN}`,
  });
  expect(response.status).toBe(303);
  const cookie = response.headers.get("set-cookie") ?? "";
  return cookie.split(";")[0] ?? "";
}

describe("mounting", () => {
  it("answers undefined outside its base path, and serves under a custom one", async () => {
    const h = handler({ basePath: "/ops/projections" });
    await expect(h(new Request(`${ORIGIN}/admin`))).resolves.toBeUndefined();
    await expect(h(new Request(`${ORIGIN}/ops/projectionsX`))).resolves.toBeUndefined();
    const page = await send(h, "/ops/projections/api/projections", { headers: bearer });
    expect(page.status).toBe(200);
    await expect(page.json()).resolves.toEqual({ projections: [] });
  });

  it("refuses bad options with typed errors", () => {
    const store = new D1CheckpointStore(env.DB);
    const auth = bearerToken(TOKEN);
    expect(() => adminHandler({ store, auth, basePath: "admin" })).toThrow(CheckpointTypeError);
    expect(() => adminHandler({ store, auth, basePath: "/admin/" })).toThrow(CheckpointTypeError);
    expect(() => adminHandler({ store: {} as never, auth })).toThrow(CheckpointTypeError);
    expect(() => adminHandler({ store, auth: {} as never })).toThrow(CheckpointTypeError);
    expect(() => adminHandler({ store, auth, projections: { a: { replay: 1 as never } } })).toThrow(CheckpointTypeError);
    expect(() => adminHandler({ store, auth, projections: { a: { undo: () => undefined } as never } })).toThrow(CheckpointTypeError);
    expect(() => adminHandler({ store, auth, unknown: 1 } as never)).toThrow(CheckpointTypeError);
  });
});

describe("bearer tokens", () => {
  it.each([
    ["blank", "                                "],
    ["padded", ` ${TOKEN} `],
    ["one space inside", `${TOKEN.slice(0, 16)} ${TOKEN.slice(16)}`],
    ["too short", "short-token-1234"],
  ])("a %s token is refused when the handler is built", (_label, token) => {
    expect(() => bearerToken(token)).toThrow(CheckpointRangeError);
  });

  it("a token that is not a string, and bad options, are type errors", () => {
    expect(() => bearerToken(undefined as never)).toThrow(CheckpointTypeError);
    expect(() => bearerToken(TOKEN, { minLength: 8 })).toThrow(CheckpointRangeError);
    expect(() => bearerToken(TOKEN, { ttl: 5 } as never)).toThrow(CheckpointTypeError);
  });

  it("scripts: 401 without or with a wrong token, JSON with the right one", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.save("balances", 7);
    const h = handler({ newest: 10 });
    const none = await send(h, "/admin/api/projections");
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toContain("Bearer");
    expect((await send(h, "/admin/api/projections", { headers: { authorization: `Bearer ${TOKEN}x` } })).status).toBe(401);
    const ok = await send(h, "/admin/api/projections", { headers: bearer });
    expect(ok.status).toBe(200);
    const body = await ok.json<{ projections: { name: string; position: number; lag: number }[] }>();
    expect(body.projections).toMatchObject([{ name: "balances", position: 7, lag: 3 }]);
  });
});

describe("the page in a browser session", () => {
  it("shows the login form, logs in with a session cookie and shows the projections", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.save("<b>balances</b>", 4);
    const h = handler({ newest: 4 });
    const form = await send(h, "/admin");
    expect(form.status).toBe(200);
    expect(form.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(await form.text()).toContain('action="/admin/login"');
    const wrong = await send(h, "/admin/login", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", origin: ORIGIN }, body: "token=nope" });
    expect(wrong.status).toBe(401);
    const cookie = await login(h);
    expect(cookie.startsWith("admin_session=")).toBe(true);
    const page = await send(h, "/admin", { headers: { cookie } });
    const text = await page.text();
    expect(page.status).toBe(200);
    expect(text).toContain("&lt;b&gt;balances&lt;/b&gt;");
    expect(text).not.toContain("<b>balances</b>");
    expect(text).not.toContain("<script");
  });

  it("over https the session is a __Host- cookie: Secure, Path=/", async () => {
    const h = handler();
    const response = await h(
      new Request("https://app.test/admin/login", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", origin: "https://app.test" },
        body: `token=${TOKEN}`,
      }),
    );
    const cookie = response?.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/^__Host-admin_session=/);
    expect(cookie).toContain("Secure");
    expect(cookie).toContain("Path=/;");
    expect(cookie).not.toContain("Domain");
  });

  it.each([
    ["no Origin, no Sec-Fetch-Site, no Referer", {}, 403],
    ["another Origin", { origin: "https://evil.test" }, 403],
    ["Sec-Fetch-Site cross-site", { "sec-fetch-site": "cross-site" }, 403],
    ["Sec-Fetch-Site none", { "sec-fetch-site": "none" }, 403],
    ["a Referer of another site", { referer: "https://evil.test/admin" }, 403],
    ["its own Origin", { origin: ORIGIN }, 202],
    ["Sec-Fetch-Site same-origin", { "sec-fetch-site": "same-origin" }, 202],
    ["a Referer of its own origin", { referer: `${ORIGIN}/admin` }, 202],
  ])("a cookie-authenticated write with %s is refused unless it proves its origin", async (_label, headers: Record<string, string>, status) => {
    let resets = 0;
    const h = handler({ projections: { balances: { reset: () => Promise.resolve(void (resets += 1)) } } });
    const cookie = await login(h);
    const response = await send(h, "/admin/projections/balances/reset", { method: "POST", headers: { cookie, accept: "application/json", ...headers } });
    expect(response.status).toBe(status);
    expect(resets).toBe(status === 202 ? 1 : 0);
  });

  it("a login without an origin is refused too", async () => {
    const h = handler();
    const response = await send(h, "/admin/login", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `token=${TOKEN}` });
    expect(response.status).toBe(403);
    expect(response.headers.get("set-cookie")).toBeNull();
  });
});

describe("corrupt rows never take the page down", () => {
  it("a checkpoint, a parked event's time and position, and a move time written badly are shown as corrupt", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.save("good", 3);
    await env.DB.batch([
      env.DB.prepare("INSERT INTO checkpoints (name, position) VALUES ('bad', 'abc')"),
      env.DB.prepare("INSERT INTO parked_events (name, position, error, parked_at) VALUES ('good', 2, 'boom', 1e20)"),
      env.DB.prepare("INSERT INTO parked_events (name, position, error, parked_at) VALUES ('good', 'x', 'text position', 0)"),
      env.DB.prepare("UPDATE checkpoint_moves SET moved_at = 'yesterday' WHERE name = 'good'"),
    ]);
    const h = handler({ projections: { good: { replay: () => Promise.resolve(true) } } });
    const overview = await send(h, "/admin/api/projections", { headers: bearer });
    expect(overview.status).toBe(200);
    const { projections } = await overview.json<{ projections: Record<string, unknown>[] }>();
    expect(projections).toMatchObject([{ name: "bad", corrupt: "stored position abc" }, { name: "good", position: 3, parked: 2 }]);
    const cookie = await login(h);
    const page = await send(h, "/admin", { headers: { cookie } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("corrupt: stored position abc");
    const parked = await send(h, "/admin/projections/good/parked", { headers: { cookie } });
    expect(parked.status).toBe(200);
    const text = await parked.text();
    expect(text).toContain("corrupt time");
    expect(text).toContain("corrupt: stored position x");
    expect(text).toContain("/admin/projections/good/parked/2/replay");
  });

  it("the library names the column of a corrupt parked time", async () => {
    await env.DB.prepare("INSERT INTO parked_events (name, position, error, parked_at) VALUES ('p', 2, 'boom', 1e20)").run();
    const error = await (async () => {
      for await (const event of new D1CheckpointStore(env.DB).parked("p")) expect(event).toBeUndefined();
    })().catch((e: unknown) => e);
    expect(error).toMatchObject({ column: "parked_at" });
    expect((error as Error).message).toContain("stored parked_at");
  });
});

describe("actions", () => {
  it("replaying a position that is not parked is a 404 and never reads or projects it", async () => {
    let replays = 0;
    const h = handler({ projections: { balances: { replay: () => Promise.resolve(Boolean((replays += 1))) } } });
    const response = await send(h, "/admin/projections/balances/parked/5/replay", { method: "POST", headers: bearer });
    expect(response.status).toBe(404);
    expect(replays).toBe(0);
  });

  it("replays a parked event (200), and a projection that still rejects it is a 409", async () => {
    await env.DB.prepare("INSERT INTO parked_events (name, position, error, parked_at) VALUES ('balances', 5, 'boom', 0)").run();
    let reject = true;
    const h = handler({
      projections: {
        balances: {
          replay: (position) => {
            if (reject) return Promise.reject(new ProjectionError("balances", position, "still on hold"));
            return Promise.resolve(true);
          },
        },
      },
    });
    expect((await send(h, "/admin/projections/balances/parked/5/replay", { method: "POST", headers: bearer })).status).toBe(409);
    reject = false;
    const done = await send(h, "/admin/projections/balances/parked/5/replay", { method: "POST", headers: bearer });
    expect(done.status).toBe(200);
    await expect(done.json()).resolves.toEqual({ replayed: 5, name: "balances" });
    expect((await send(h, "/admin/projections/other/parked/5/replay", { method: "POST", headers: bearer })).status).toBe(404);
  });

  it("a reset runs the rebuild through waitUntil", async () => {
    const calls: string[] = [];
    const waited: Promise<unknown>[] = [];
    const h = handler({
      waitUntil: (promise) => waited.push(promise),
      projections: {
        balances: {
          reset: () => Promise.resolve(void calls.push("reset")),
          rebuild: () => Promise.resolve(calls.push("rebuild")),
        },
      },
    });
    const response = await send(h, "/admin/projections/balances/reset", { method: "POST", headers: bearer });
    expect(response.status).toBe(202);
    await Promise.all(waited);
    expect(calls).toEqual(["reset", "rebuild"]);
    expect((await send(h, "/admin/projections/balances/reset", { headers: bearer })).status).toBe(405);
  });

  it("pages parked events by position", async () => {
    const statements = Array.from({ length: 120 }, (_, i) =>
      env.DB.prepare("INSERT INTO parked_events (name, position, error, parked_at) VALUES ('p', ?1, 'e', 0)").bind(i + 1),
    );
    await env.DB.batch(statements);
    const h = handler();
    const first = await (await send(h, "/admin/api/projections/p/parked", { headers: bearer })).json<{ events: { position: number }[]; next: number }>();
    expect(first.events).toHaveLength(50);
    expect(first.next).toBe(50);
    const third = await (await send(h, "/admin/api/projections/p/parked?after=100", { headers: bearer })).json<{ events: { position: number }[]; next?: number }>();
    expect(third.events.map((event) => event.position)).toEqual(Array.from({ length: 20 }, (_, i) => i + 101));
    expect(third.next).toBeUndefined();
    expect((await send(h, "/admin/api/projections/p/parked?after=-1", { headers: bearer })).status).toBe(400);
  });

  it("lag as time from eventTimeAfter, and partitions from their hook (a failing one shown, not a 500)", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.save("slow", 1);
    const hourAgo = Date.now() - 3_600_000;
    await env.DB.batch([env.DB.prepare("INSERT INTO admin_events (position, at) VALUES (1, ?1), (2, ?1)").bind(hourAgo)]);
    const h = handler({
      newest: 2,
      eventTimeAfter: (after) => env.DB.prepare("SELECT at FROM admin_events WHERE position > ?1 ORDER BY position LIMIT 1").bind(after),
      partitions: () =>
        Promise.resolve([
          { name: "history/alice", statuses: () => Promise.resolve([{ name: "history", found: true, position: 3, lag: 0, movedAt: undefined, sinceMovedMs: undefined, parked: 0 }]) },
          { name: "history/bob", statuses: () => Promise.reject(new Error("object unreachable")) },
        ]),
    });
    const { projections } = await (await send(h, "/admin/api/projections", { headers: bearer })).json<{ projections: { lagMs: number }[] }>();
    expect(projections[0]?.lagMs).toBeGreaterThanOrEqual(3_600_000 - 1000);
    const cookie = await login(h);
    const text = await (await send(h, "/admin", { headers: { cookie } })).text();
    expect(text).toContain("history/alice");
    expect(text).toContain("object unreachable");
  });

  it("the rate-limit hook can refuse with 429", async () => {
    const seen: string[] = [];
    const h = handler({ rateLimit: (_request, action) => (seen.push(action), action !== "login") });
    const response = await send(h, "/admin/login", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", origin: ORIGIN }, body: `token=${TOKEN}` });
    expect(response.status).toBe(429);
    expect(response.headers.get("retry-after")).toBe("60");
    expect((await send(h, "/admin/api/projections", { headers: bearer })).status).toBe(200);
    expect(seen).toEqual(["login", "read"]);
  });

  it("a custom AdminAuth: without login, an anonymous page visit is a 401 page, not a form", async () => {
    const auth: AdminAuth = { authorize: (request) => Promise.resolve(request.headers.get("x-user") === "ops" ? { subject: "ops", method: "header", ambient: true } : undefined) };
    const h = handler({ auth });
    const anonymous = await send(h, "/admin");
    expect(anonymous.status).toBe(401);
    expect(await anonymous.text()).not.toContain("/admin/login");
    expect((await send(h, "/admin/login", { method: "POST" })).status).toBe(404);
    expect((await send(h, "/admin", { headers: { "x-user": "ops" } })).status).toBe(200);
  });

  it("a newest query that returns junk, or a failing partitions hook, is never a 500", async () => {
    await new D1CheckpointStore(env.DB).save("a", 1);
    const junk = handler({ newest: env.DB.prepare("SELECT 'abc'") });
    const response = await send(junk, "/admin/api/projections", { headers: bearer });
    expect(response.status).toBe(503);
    const listed = handler({ partitions: () => Promise.reject(new Error("cannot list")) });
    const cookie = await login(listed);
    const page = await send(listed, "/admin", { headers: { cookie } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("cannot list");
    expect(() => adminHandler({ store: new D1CheckpointStore(env.DB), auth: bearerToken(TOKEN), newest: "10" as never })).toThrow(CheckpointTypeError);
  });

  it("wrong bearer tokens are rate-limited too, and a custom base path scopes the session cookie to it", async () => {
    let allowed = 2;
    const limited = handler({ rateLimit: () => (allowed -= 1) >= 0 });
    expect((await send(limited, "/admin/api/projections", { headers: { authorization: "Bearer wrong-wrong-wrong-wrong-wrong-wrong" } })).status).toBe(401);
    expect((await send(limited, "/admin/api/projections", { headers: { authorization: "Bearer wrong-wrong-wrong-wrong-wrong-wrong" } })).status).toBe(401);
    expect((await send(limited, "/admin/api/projections", { headers: { authorization: "Bearer wrong-wrong-wrong-wrong-wrong-wrong" } })).status).toBe(429);
    const custom = handler({ basePath: "/ops" });
    const response = await send(custom, "/ops/login", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", origin: ORIGIN }, body: `token=${TOKEN}` });
    expect(response.headers.get("set-cookie")).toContain("Path=/ops;");
  });
});
