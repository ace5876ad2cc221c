import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { adminHandler, bearerToken, type AdminAuth, type AdminHandlerOptions } from "../src/admin.js";
import { D1CheckpointStore } from "../src/index.js";
import { injectFaults } from "../src/testing.js";

// What the admin page answers when one of the caller's hooks fails (reset,
// replay, rebuild, rateLimit, auth, eventTimeAfter): the hook's failure,
// named, never "the store failed"; failures of the handler's own store calls
// stay a 503. In workerd against local D1.

const TOKEN = "0123456789abcdef0123456789abcdef";
const ORIGIN = "http://app.test";
const bearer = { authorization: `Bearer ${TOKEN}` };
const NO_TABLE = /D1_ERROR: no such table: hk_missing/;

beforeEach(async () => {
  await env.DB.batch([env.DB.prepare("DELETE FROM checkpoints"), env.DB.prepare("DELETE FROM parked_events"), env.DB.prepare("DELETE FROM checkpoint_moves")]);
});

type Handler = (request: Request) => Promise<Response | undefined>;

function handler(options: Partial<AdminHandlerOptions> = {}): Handler {
  return adminHandler({ store: new D1CheckpointStore(env.DB), auth: bearerToken(TOKEN), ...options });
}

async function send(h: Handler, path: string, init: RequestInit = {}): Promise<Response> {
  const response = await h(new Request(`${ORIGIN}${path}`, init));
  if (response === undefined) throw new Error(`not handled: ${path}`);
  return response;
}

const post = (h: Handler, path: string): Promise<Response> => send(h, path, { method: "POST", headers: bearer });

async function cookieOf(h: Handler): Promise<string> {
  const login = await send(h, "/admin/login", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", origin: ORIGIN }, body: `token=${TOKEN}` });
  return (login.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
}

/** A hook's D1 call that fails the way a user's bad SQL does. */
const failingSql = (): Promise<unknown> => env.DB.prepare("DELETE FROM hk_missing").run();

describe("a failing AdminProjection hook is that hook's failure", () => {
  it("a reset hook whose SQL fails: 500 naming the hook and the projection with D1's message, as JSON and as a page; not the store's 503", async () => {
    const h = handler({ projections: { balances: { reset: async () => { await failingSql(); } } } });
    const response = await post(h, "/admin/projections/balances/reset");
    expect(response.status).toBe(500);
    const body = await response.json<{ error: string; hook: string; projection: string }>();
    expect(body).toMatchObject({ hook: "reset", projection: "balances" });
    expect(body.error).toMatch(/^the reset hook of "balances" failed: /);
    expect(body.error).toMatch(NO_TABLE);
    expect(body.error).not.toContain("the store failed");

    const cookie = await cookieOf(h);
    const page = await send(h, "/admin/projections/balances/reset", { method: "POST", headers: { cookie, origin: ORIGIN } });
    expect(page.status).toBe(500);
    expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
    const text = await page.text();
    expect(text).toContain("<h1>A hook failed</h1>");
    expect(text).toContain("the reset hook of &quot;balances&quot; failed: D1_ERROR: no such table: hk_missing");
  });

  it("a replay hook that fails other than by rejecting the event again is a 500 naming it; one that answers neither true nor false too", async () => {
    await env.DB.prepare("INSERT INTO parked_events (name, position, error, parked_at) VALUES ('balances', 5, 'boom', 0)").run();
    const failing = await post(handler({ projections: { balances: { replay: async () => Boolean(await failingSql()) } } }), "/admin/projections/balances/parked/5/replay");
    expect(failing.status).toBe(500);
    await expect(failing.json()).resolves.toMatchObject({ error: expect.stringMatching(/^the replay hook of "balances" failed: D1_ERROR: no such table: hk_missing/) as unknown, hook: "replay" });

    const junk = await post(handler({ projections: { balances: { replay: () => Promise.resolve(undefined as unknown as boolean) } } }), "/admin/projections/balances/parked/5/replay");
    expect(junk.status).toBe(500);
    await expect(junk.json()).resolves.toMatchObject({ error: 'the replay hook of "balances" must answer true (replayed) or false (not parked), got undefined', hook: "replay" });
  });

  it("a rebuild hook that fails: without waitUntil the answer names it and says the reset was done; with waitUntil it cannot, and the answer is 202", async () => {
    const resets: string[] = [];
    const projection = { reset: () => Promise.resolve(void resets.push("reset")), rebuild: () => Promise.reject(new Error("runner misconfigured")) };
    const waiting = await post(handler({ projections: { balances: projection } }), "/admin/projections/balances/reset");
    expect(waiting.status).toBe(500);
    await expect(waiting.json()).resolves.toEqual({
      error: 'the rebuild hook of "balances" failed: runner misconfigured (the reset was done)',
      hook: "rebuild",
      projection: "balances",
    });
    expect(resets).toEqual(["reset"]);

    const waited: Promise<unknown>[] = [];
    const background = await post(handler({ waitUntil: (promise) => waited.push(promise), projections: { balances: projection } }), "/admin/projections/balances/reset");
    expect(background.status).toBe(202);
    await expect(Promise.all(waited)).resolves.toEqual([undefined]); // the failure is logged, never an unhandled rejection
    expect(resets).toEqual(["reset", "reset"]);
  });
});

describe("the handler's other hooks", () => {
  it("a rateLimit hook that throws is a 500 naming it, for scripts and for the page", async () => {
    const h = handler({ rateLimit: () => Promise.reject(new Error("limiter unreachable")) });
    const script = await send(h, "/admin/api/projections", { headers: bearer });
    expect(script.status).toBe(500);
    await expect(script.json()).resolves.toEqual({ error: "the rateLimit hook failed: limiter unreachable", hook: "rateLimit" });
    const page = await send(h, "/admin");
    expect(page.status).toBe(500);
    expect(await page.text()).toContain("the rateLimit hook failed: limiter unreachable");
  });

  it("an AdminAuth whose authorize throws (a D1 session table that is missing) is a 500 naming it, not the store's 503", async () => {
    const auth: AdminAuth = { authorize: async () => ((await failingSql()) === undefined ? undefined : undefined) };
    const response = await send(handler({ auth }), "/admin/api/projections", { headers: bearer });
    expect(response.status).toBe(500);
    await expect(response.json()).resolves.toMatchObject({ error: expect.stringMatching(/^the auth\.authorize hook failed: D1_ERROR: no such table: hk_missing/) as unknown, hook: "auth.authorize" });
  });

  it("an eventTimeAfter hook that throws, or whose query fails, leaves the overview up: no lag as time, and the error named on the page and in JSON", async () => {
    await new D1CheckpointStore(env.DB).save("slow", 1);
    const cases = [
      { eventTimeAfter: (): D1PreparedStatement => { throw new Error("no events table configured"); }, error: "the eventTimeAfter hook failed: no events table configured" },
      { eventTimeAfter: (): D1PreparedStatement => env.DB.prepare("SELECT at FROM hk_missing"), error: "the eventTimeAfter hook's queries failed: D1_ERROR: no such table: hk_missing" },
    ];
    for (const { eventTimeAfter, error } of cases) {
      const h = handler({ newest: 3, eventTimeAfter });
      const listed = await send(h, "/admin/api/projections", { headers: bearer });
      expect(listed.status).toBe(200);
      const body = await listed.json<{ projections: { name: string; lag: number; lagMs?: number }[]; lagMsError: string }>();
      expect(body.projections).toMatchObject([{ name: "slow", lag: 2 }]);
      expect(body.projections[0]?.lagMs).toBeUndefined();
      expect(body.lagMsError).toContain(error);
      const page = await send(h, "/admin", { headers: { cookie: await cookieOf(h) } });
      expect(page.status).toBe(200);
      const text = await page.text();
      expect(text).toContain('<p class="error" role="alert">Lag as time is not shown: ');
      expect(text).toContain(error.replaceAll("'", "&#39;"));
      expect(text).toContain("<td>slow</td>");
    }
  });
});

describe("the store's own failures stay a 503", () => {
  it("the same D1 failure is the store's in the handler's own query (503), and the hook's in a reset hook (500)", async () => {
    const faulty = injectFaults(env.DB);
    const store = new D1CheckpointStore(faulty.db, { retry: false });
    await store.save("balances", 2);
    const h = adminHandler({
      store,
      auth: bearerToken(TOKEN),
      projections: { balances: { reset: async () => { await faulty.db.batch([store.resetStatement("balances")]); } } },
    });
    faulty.inject({ sql: /checkpoints/, message: "D1_ERROR: storage full", times: 2 });
    const overview = await send(h, "/admin/api/projections", { headers: bearer });
    expect(overview.status).toBe(503);
    await expect(overview.json()).resolves.toEqual({ error: "the store failed: D1_ERROR: storage full" });
    const reset = await post(h, "/admin/projections/balances/reset");
    expect(reset.status).toBe(500);
    await expect(reset.json()).resolves.toEqual({ error: 'the reset hook of "balances" failed: D1_ERROR: storage full', hook: "reset", projection: "balances" });
    expect(faulty.faults).toHaveLength(2);
    expect((await store.load("balances")).position).toBe(2);
  });
});
