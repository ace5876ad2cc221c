import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { adminHandler, bearerToken, type AdminDaemon, type AdminHandlerOptions } from "../src/admin.js";
import type { DaemonStatus } from "../src/daemon.js";
import { CheckpointTypeError, D1CheckpointStore } from "../src/index.js";
import { resetDaemonTables } from "./support/daemon-tables.js";

// The admin page's Daemons section and its Wake, Pause and Resume, against
// real projection daemons (the suite's TestDaemon objects, configured by
// name) in workerd over local D1: listed as HTML and JSON, a broken object
// or a junk hook answer shown as an error row, actions behind the page's
// authorization and same-origin check. Alarms fire by themselves here, so
// the tests drive them with runDurableObjectAlarm until nothing is due.

const TOKEN = "0123456789abcdef0123456789abcdef";
const ORIGIN = "http://app.test";
const bearer = { authorization: `Bearer ${TOKEN}` };
const db = env.DB;

type Stub = DurableObjectStub<import("./support/daemon-object.js").TestDaemon>;
type Handler = (request: Request) => Promise<Response | undefined>;
interface Listed {
  readonly name: string;
  readonly status?: Omit<DaemonStatus, "nextRunAt"> & { readonly nextRunAt?: string };
  readonly error?: string;
}

let objects = 0;
/** A daemon object of its own (storage is this file's, shared by its tests), configured by its name. */
function daemon(config = "budget=900"): Stub {
  objects += 1;
  return env.TEST_DAEMON.getByName(`${config};n=admin-${String(objects)}`);
}

beforeEach(() => resetDaemonTables(db));

function handler(daemons: AdminHandlerOptions["daemons"]): Handler {
  return adminHandler({ store: new D1CheckpointStore(db), auth: bearerToken(TOKEN), ...(daemons === undefined ? {} : { daemons }) });
}

async function send(h: Handler, path: string, init: RequestInit = {}): Promise<Response> {
  const response = await h(new Request(`${ORIGIN}${path}`, init));
  if (response === undefined) throw new Error(`not handled: ${path}`);
  return response;
}

async function cookieOf(h: Handler): Promise<string> {
  const login = await send(h, "/admin/login", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", origin: ORIGIN }, body: `token=${TOKEN}` });
  return (login.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
}

async function listed(h: Handler): Promise<Listed[]> {
  const response = await send(h, "/admin/api/daemons", { headers: bearer });
  expect(response.status).toBe(200);
  return (await response.json<{ daemons: Listed[] }>()).daemons;
}

const path = (stub: Stub, action: string): string => `/admin/daemons/${encodeURIComponent(stub.name ?? "")}/${action}`;

/** Appends `count` events after the newest. */
async function append(count: number): Promise<void> {
  const rows = Array.from({ length: count }, (_, i) => ({ p: i + 1 }));
  await db
    .prepare("INSERT INTO dm_events (position, account, amount) SELECT (SELECT COALESCE(MAX(position), 0) FROM dm_events) + (value ->> 'p'), 'a' || ((value ->> 'p') % 3), 1 FROM json_each(?1)")
    .bind(JSON.stringify(rows))
    .run();
}

/** Every event applied exactly once. */
async function expectProjected(): Promise<void> {
  const events = await db.prepare("SELECT account, SUM(amount) AS total, COUNT(*) AS n FROM dm_events GROUP BY account ORDER BY account").all();
  expect((await db.prepare("SELECT account, total, n FROM dm_totals ORDER BY account").all()).results).toEqual(events.results);
}

/** Runs the alarms until nothing is due or running: the daemon's chained invocations, without waiting for the clock. */
async function settle(stub: Stub): Promise<DaemonStatus> {
  for (let step = 0; step < 500; step++) {
    const status: DaemonStatus = await stub.status();
    if (status.state !== "running" && (status.nextRunAt === undefined || status.nextRunAt.getTime() > Date.now() + 500)) return status;
    await runDurableObjectAlarm(stub);
  }
  throw new Error("still due after 500 alarms");
}

/** Makes the daemon's runs fail `failures` times in a row (woken between them), so that it backs off: 1, 2, then 4 s. */
async function backOff(stub: Stub, failures: number): Promise<DaemonStatus> {
  await db.prepare("INSERT OR IGNORE INTO dm_flags (what) VALUES ('fail')").run();
  await stub.notify();
  for (let step = 0; step < 500; step++) {
    const status: DaemonStatus = await stub.status();
    if (status.state === "backingOff" && status.attempts >= failures) return status;
    if (status.state === "backingOff") await stub.wake();
    await runDurableObjectAlarm(stub);
  }
  throw new Error(`did not fail ${String(failures)} times`);
}

describe("the Daemons section", () => {
  it("lists every daemon as HTML and JSON: state, pending, attempts, next run, last run, with Wake and Pause", async () => {
    const fresh = daemon("budget=900;<b>x</b>");
    const ran = daemon();
    await append(30);
    await ran.notify();
    const done = await settle(ran);
    expect(done.lastRun).toMatchObject({ ended: "caughtUp" });
    const h = handler(() => Promise.resolve([fresh, ran]));

    const [first, second] = await listed(h);
    expect(first).toEqual({ name: fresh.name, status: { name: "dm", state: "idle", pending: false, attempts: 0, runs: 0 } });
    expect(second).toMatchObject({ name: ran.name, status: { state: "idle", pending: false, attempts: 0, runs: done.runs, lastRun: { ended: "caughtUp", caughtUp: true, queries: done.lastRun?.queries } } });

    const page = await send(h, "/admin", { headers: { cookie: await cookieOf(h) } });
    expect(page.status).toBe(200);
    const text = await page.text();
    expect(text).toContain('<table id="daemons">');
    expect(text).toContain("budget=900;&lt;b&gt;x&lt;/b&gt;;n=");
    expect(text).not.toContain("<b>x</b>");
    expect(text).toContain(`action="${path(fresh, "wake")}"`);
    expect(text).toContain(`action="${path(ran, "pause")}"`);
    expect(text).toContain(`caughtUp · ${String(done.lastRun?.queries)} queries · ${String(done.lastRun?.at)}`);
    expect(text).toContain("none yet");
    // Without the option there is no section.
    expect(await (await send(handler(undefined), "/admin", { headers: { cookie: await cookieOf(h) } })).text()).not.toContain("Daemons");
  });

  it("Wake makes a backing-off daemon run now instead of after its delay", async () => {
    const stub = daemon();
    await append(40);
    const backing = await backOff(stub, 3);
    const due = backing.nextRunAt?.getTime() ?? 0;
    expect(due).toBeGreaterThan(Date.now());
    const h = handler(() => Promise.resolve([stub]));
    const [row] = await listed(h);
    expect(row?.status).toMatchObject({ state: "backingOff", attempts: 3, pending: true, lastError: "the read model's table is locked (test flag)", nextRunAt: new Date(due).toISOString() });
    const page = await (await send(h, "/admin", { headers: { cookie: await cookieOf(h) } })).text();
    expect(page).toContain("backing off");
    expect(page).toContain("the read model&#39;s table is locked (test flag)");

    await db.prepare("DELETE FROM dm_flags").run();
    // Before Wake, the alarm keeps the backoff's time: nothing runs.
    await runDurableObjectAlarm(stub);
    expect(await stub.status()).toMatchObject({ state: "backingOff", attempts: 3 });
    const woken = await send(h, path(stub, "wake"), { method: "POST", headers: bearer });
    expect(woken.status).toBe(202);
    await expect(woken.json()).resolves.toEqual({ woke: stub.name });
    const after = await settle(stub);
    expect(after).toMatchObject({ state: "idle", attempts: 0, lastError: undefined, lastRun: { ended: "caughtUp" } });
    expect(Date.parse(after.lastRun?.at ?? "")).toBeLessThan(due);
    await expectProjected();
  });

  it("Pause from the page's form, then Resume: paused, notified work kept pending, and run after the resume", async () => {
    const stub = daemon();
    const h = handler(() => Promise.resolve([stub]));
    const cookie = await cookieOf(h);
    const paused = await send(h, path(stub, "pause"), { method: "POST", headers: { cookie, origin: ORIGIN } });
    expect(paused.status).toBe(303);
    expect(paused.headers.get("location")).toBe(`/admin?notice=${encodeURIComponent(`paused ${stub.name ?? ""}`)}`);
    await append(25);
    await stub.notify();
    expect(await settle(stub)).toMatchObject({ state: "paused", pending: true, runs: 0 });
    const page = await (await send(h, "/admin", { headers: { cookie } })).text();
    expect(page).toContain(`action="${path(stub, "resume")}"`);
    expect(page).not.toContain(`action="${path(stub, "pause")}"`);
    expect(page).toContain('disabled title="paused: resume it first"');

    const resumed = await send(h, path(stub, "resume"), { method: "POST", headers: bearer });
    expect(resumed.status).toBe(200);
    await expect(resumed.json()).resolves.toEqual({ resumed: stub.name });
    expect(await settle(stub)).toMatchObject({ state: "idle", pending: false, runs: 1 });
    await expectProjected();
  });

  it("a daemon whose status() throws is shown with its error, the others still listed; its failing Wake is a 500 naming it", async () => {
    const broken = daemon("budget=0"); // its constructor refuses the budget: every call to it fails
    const good = daemon();
    const h = handler(() => Promise.resolve([broken, good]));
    const [bad, fine] = await listed(h);
    expect(bad).toMatchObject({ name: broken.name, error: expect.stringMatching(/^status\(\) failed: .*options\.budget must be an integer/) as unknown });
    expect(bad?.status).toBeUndefined();
    expect(fine).toMatchObject({ name: good.name, status: { state: "idle" } });
    const page = await send(h, "/admin", { headers: { cookie: await cookieOf(h) } });
    expect(page.status).toBe(200);
    const text = await page.text();
    expect(text).toMatch(/class="error">status\(\) failed: .*options\.budget must be an integer/);
    expect(text).toContain(`action="${path(good, "wake")}"`);
    expect(text).not.toContain(`action="${path(broken, "wake")}"`);

    const woken = await send(h, path(broken, "wake"), { method: "POST", headers: bearer });
    expect(woken.status).toBe(500);
    const body = await woken.json<{ error: string }>();
    expect(body).toMatchObject({ hook: "wake", daemon: broken.name });
    expect(body.error.startsWith(`the wake hook of daemon ${JSON.stringify(broken.name)} failed: `)).toBe(true);
    expect(body.error).toMatch(/options\.budget must be an integer/);
  });

  it("a hook that fails or answers junk is an error row naming it, never a 500; an action through it is a 500 naming the hook", async () => {
    for (const [hook, expected] of [
      [() => Promise.reject(new Error("cannot list")), "the daemons hook failed: cannot list"],
      [() => Promise.resolve("junk"), "options.daemons must answer an array of daemons (stubs of ProjectionDaemonObject), got string"],
    ] as const) {
      const h = handler(hook as never);
      expect(await listed(h)).toEqual([{ name: "(the daemons hook)", error: expected }]);
      const page = await send(h, "/admin", { headers: { cookie: await cookieOf(h) } });
      expect(page.status).toBe(200);
      const woken = await send(h, "/admin/daemons/x/wake", { method: "POST", headers: bearer });
      expect(woken.status).toBe(500);
      await expect(woken.json()).resolves.toEqual({ error: expected, hook: "daemons" });
    }
    const good = daemon();
    const unnamed = env.TEST_DAEMON.get(env.TEST_DAEMON.newUniqueId());
    const partial = { name: "partial", status: () => good.status() };
    const junkStatus: AdminDaemon = { name: "junk", status: () => Promise.resolve({ state: "sleeping" } as never), wake: () => good.wake(), pause: () => good.pause(), resume: () => good.resume() };
    const h = handler(() => Promise.resolve([null, unnamed, partial, junkStatus, good, good] as never));
    const rows = await listed(h);
    expect(rows).toEqual([
      { name: "(daemon 0)", error: "options.daemons[0] must be a daemon (a stub of a ProjectionDaemonObject), got null" },
      { name: "(daemon 1)", error: "options.daemons[1].name must be a non-empty string (get the stub by name: getByName or idFromName), got undefined" },
      { name: "partial", error: "options.daemons[2].wake must be a function, got undefined" },
      { name: "junk", error: 'status() of junk answered state "sleeping", not idle, running, backingOff or paused' },
      { name: good.name, status: expect.objectContaining({ state: "idle" }) as unknown },
      { name: good.name, error: `options.daemons[5]: the name ${JSON.stringify(good.name)} is listed twice` },
    ]);
    const partialWake = await send(h, "/admin/daemons/partial/wake", { method: "POST", headers: bearer });
    expect(partialWake.status).toBe(500);
    await expect(partialWake.json()).resolves.toEqual({ error: "options.daemons[2].wake must be a function, got undefined", hook: "daemons" });
    expect((await send(h, path(good, "pause"), { method: "POST", headers: bearer })).status).toBe(500);
    expect(await statusOf(good)).toMatchObject({ state: "idle" }); // listed twice: neither was paused
  });

  it("an unknown daemon is a 404, a wrong method a 405; without the option the list is empty", async () => {
    const target = daemon();
    const h = handler(() => Promise.resolve([target]));
    expect((await send(h, "/admin/daemons/nobody/wake", { method: "POST", headers: bearer })).status).toBe(404);
    expect((await send(h, path(target, "frobnicate"), { method: "POST", headers: bearer })).status).toBe(404);
    const get = await send(h, path(target, "pause"), { headers: bearer });
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
    expect((await send(h, "/admin/api/daemons", { method: "POST", headers: bearer })).status).toBe(405);
    expect(await statusOf(target)).toMatchObject({ state: "idle" });
    const none = handler(undefined);
    expect(await listed(none)).toEqual([]);
    expect((await send(none, path(target, "wake"), { method: "POST", headers: bearer })).status).toBe(404);
  });

  it("requires authorization, and a browser's write from its own origin", async () => {
    const target = daemon();
    const h = handler(() => Promise.resolve([target]));
    expect((await send(h, "/admin/api/daemons")).status).toBe(401);
    expect((await send(h, "/admin/api/daemons", { headers: { authorization: `Bearer ${TOKEN}x` } })).status).toBe(401);
    expect((await send(h, path(target, "pause"), { method: "POST" })).status).toBe(401);
    expect((await send(h, path(target, "pause"), { method: "POST", headers: { authorization: `Bearer ${TOKEN}x` } })).status).toBe(401);
    const cookie = await cookieOf(h);
    expect((await send(h, path(target, "pause"), { method: "POST", headers: { cookie, origin: "https://evil.test" } })).status).toBe(403);
    expect((await send(h, path(target, "pause"), { method: "POST", headers: { cookie } })).status).toBe(403);
    expect(await statusOf(target)).toMatchObject({ state: "idle" });
    expect((await send(h, path(target, "pause"), { method: "POST", headers: { cookie, origin: ORIGIN } })).status).toBe(303);
    expect(await statusOf(target)).toMatchObject({ state: "paused" });
  });

  it("refuses a daemons option that is not a function with a typed error naming it", () => {
    const store = new D1CheckpointStore(db);
    const auth = bearerToken(TOKEN);
    for (const daemons of [[daemon()], "daemons", 1]) {
      const error = ((): unknown => {
        try {
          adminHandler({ store, auth, daemons: daemons as never });
        } catch (caught) {
          return caught;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(CheckpointTypeError);
      expect(error).toMatchObject({ argument: "options.daemons" });
    }
    expect(() => adminHandler({ store, auth, daemons: [daemon()] as never })).toThrow(/not an array: it is asked for on every overview/);
  });
});

/** A daemon's status, read straight from its object. */
function statusOf(target: Stub): Promise<DaemonStatus> {
  return target.status();
}
