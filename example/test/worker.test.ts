import { createExecutionContext, createScheduledController, listDurableObjectIds, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { SCHEMA } from "../../src/index.js";
import { schemaStatements } from "../../src/sql/schema.js";
import { countD1 } from "../../src/testing.js";
import type { AccountHistory, AccountHistoryView } from "../src/account-history.js";
import { LEDGER_PROJECTIONS } from "../src/ledger.js";
import { ledgerDaemon } from "../src/daemon.js";
import worker from "../src/worker.js";
import { settleLedger } from "./daemon.js";
import { resetExample } from "./reset.js";

const TOKEN = "test-admin-token-0123456789abcdef";

/** Sends a request through the Worker and waits for its background work (the projection). */
async function send(path: string, init: RequestInit = {}, bindings: Cloudflare.Env = env): Promise<Response> {
  const ctx = createExecutionContext();
  const request = new Request(`http://example.test${path}`, init) as Parameters<typeof worker.fetch>[0];
  const response = await worker.fetch(request, bindings, ctx);
  await waitOnExecutionContext(ctx);
  await settleLedger(bindings);
  return response;
}

function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return send(path, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json", ...headers } });
}

const admin = { authorization: `Bearer ${TOKEN}` };

async function body<T>(response: Response): Promise<T> {
  return (await response.json());
}

/** The projections the admin lists (GET /admin/api/projections), as name, position and lag. */
async function projections(): Promise<{ name: string; position: number; lag: number }[]> {
  const listed = await body<{ projections: { name: string; position: number; lag: number }[] }>(await send("/admin/api/projections", { headers: admin }));
  return listed.projections.map(({ name, position, lag }) => ({ name, position, lag }));
}

async function newestPosition(): Promise<number> {
  return (await env.DB.prepare("SELECT MAX(position) AS n FROM events").first<number>("n")) ?? 0;
}

beforeEach(resetExample);

describe("the example Worker", () => {
  it("GET / describes the routes", async () => {
    const response = await send("/");
    expect(response.status).toBe(200);
    const text = await response.text();
    for (const route of ["POST /events", "GET  /balances", "GET  /admin/api/projections", "GET  /admin/holds", "/reset"]) expect(text).toContain(route);
  });

  it("appends events and projects them into balances after the response", async () => {
    const response = await post("/events", [
      { account: "alice", amount: 5 },
      { account: "bob", amount: 7 },
      { account: "alice", amount: -2 },
    ]);
    expect(response.status).toBe(201);
    const { appended } = await body<{ appended: number[] }>(response);
    expect(appended).toHaveLength(3);
    expect(appended).toEqual([...appended].sort((a, b) => a - b));
    await expect(body(await send("/balances"))).resolves.toEqual({
      balances: [
        { account: "alice", balance: 3, events: 2 },
        { account: "bob", balance: 7, events: 1 },
      ],
    });
    await expect(body(await send("/balances/bob"))).resolves.toEqual({ account: "bob", balance: 7, events: 1 });
    await expect(body(await send("/balances?after=alice&limit=1"))).resolves.toEqual({
      balances: [{ account: "bob", balance: 7, events: 1 }],
    });
  });

  it("an append notifies the ledger's daemon, which runs the projections by itself", async () => {
    const ctx = createExecutionContext();
    const request = new Request("http://example.test/events", { method: "POST", body: JSON.stringify({ account: "dave", amount: 4 }), headers: { "content-type": "application/json" } });
    expect((await worker.fetch(request as Parameters<typeof worker.fetch>[0], env, ctx)).status).toBe(201);
    await waitOnExecutionContext(ctx);
    const daemon = ledgerDaemon(env);
    const notified = await daemon?.status();
    expect(notified !== undefined && (notified.pending || notified.runs > 0)).toBe(true);
    await settleLedger();
    expect(await daemon?.status()).toMatchObject({ state: "idle", pending: false, attempts: 0, lastRun: { caughtUp: true } });
    await expect(body(await send("/balances/dave"))).resolves.toEqual({ account: "dave", balance: 4, events: 1 });
  });

  it("the scheduled handler catches up on events the per-append run missed", async () => {
    await env.DB.prepare("INSERT INTO events (account, amount) VALUES ('carol', 4), ('carol', 6)").run();
    expect(await projections()).toEqual([]);
    await worker.scheduled(createScheduledController({ cron: "* * * * *" }), env); // pokes the daemon
    await settleLedger();
    await expect(body(await send("/balances/carol"))).resolves.toEqual({ account: "carol", balance: 10, events: 2 });
    const newest = await newestPosition();
    expect(await projections()).toEqual([
      { name: "balances", position: newest, lag: 0 },
      { name: "daily-totals", position: newest, lag: 0 },
    ]);
  });

  it("admin lists checkpoints with their lag behind the newest event", async () => {
    await post("/events", { account: "dave", amount: 1 });
    await env.DB.prepare("INSERT INTO events (account, amount) VALUES ('dave', 1), ('dave', 1)").run();
    const position = (await newestPosition()) - 2;
    expect(await projections()).toEqual([
      { name: "balances", position, lag: 2 },
      { name: "daily-totals", position, lag: 2 },
    ]);
  });

  it("admin reset clears the projection and rebuilds the same read model", async () => {
    await post("/events", [
      { account: "erin", amount: 3 },
      { account: "frank", amount: 9 },
    ]);
    const before = await body(await send("/balances"));
    await env.DB.prepare("UPDATE balances SET balance = 999").run(); // a corrupted read model
    const response = await send("/admin/projections/balances/reset", { method: "POST", headers: admin });
    expect(response.status).toBe(202);
    await expect(body(await send("/balances"))).resolves.toEqual(before);
    const unknown = await send("/admin/projections/nope/reset", { method: "POST", headers: admin });
    expect(unknown.status).toBe(404);
  });

  describe("admin authorization", () => {
    it.each([
      ["no header", {}],
      ["a wrong token", { authorization: "Bearer wrong" }],
      ["a token prefix", { authorization: `Bearer ${TOKEN.slice(0, -1)}` }],
      ["another scheme", { authorization: `Basic ${TOKEN}` }],
    ])("rejects %s with 401", async (_, headers: Record<string, string>) => {
      const response = await send("/admin/api/projections", { headers });
      expect(response.status).toBe(401);
      expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
      await expect(body(response)).resolves.toEqual({ error: "authorization required" });
    });

    it("disables admin routes when no token is configured", async () => {
      for (const token of [undefined, ""]) {
        const response = await send("/admin/api/projections", { headers: admin }, { ...env, ADMIN_TOKEN: token });
        expect(response.status).toBe(403);
        await expect(body(response)).resolves.toMatchObject({ error: expect.stringContaining("disabled") as string });
      }
    });

    it("a reset without the token changes nothing", async () => {
      await post("/events", { account: "gina", amount: 2 });
      const response = await send("/admin/projections/balances/reset", { method: "POST" });
      expect(response.status).toBe(401);
      await expect(body(await send("/balances/gina"))).resolves.toMatchObject({ balance: 2 });
    });
  });

  describe("bad requests get a JSON error, never a stack trace", () => {
    it.each([
      ["invalid JSON", () => send("/events", { method: "POST", body: "{", headers: { "content-type": "application/json" } }), 400],
      ["no JSON content type", () => send("/events", { method: "POST", body: "{}" }), 415],
      ["an empty array", () => post("/events", []), 400],
      ["a bad account", () => post("/events", { account: "a b", amount: 1 }), 400],
      ["a zero amount", () => post("/events", { account: "a", amount: 0 }), 400],
      ["a fractional amount", () => post("/events", { account: "a", amount: 1.5 }), 400],
      ["a string amount", () => post("/events", { account: "a", amount: "1" }), 400],
      ["too many events", () => post("/events", Array.from({ length: 101 }, () => ({ account: "a", amount: 1 }))), 400],
      ["a bad limit", () => send("/balances?limit=0"), 400],
      ["an unknown account", () => send("/balances/nobody"), 404],
      ["an unknown route", () => send("/nope"), 404],
      ["a wrong method", () => send("/events"), 405],
    ] as const)("%s", async (_, request, status) => {
      const response = await request();
      expect(response.status).toBe(status);
      expect(response.headers.get("content-type")).toMatch(/application\/json/);
      const payload = await body<Record<string, unknown>>(response);
      expect(Object.keys(payload)).toEqual(["error"]);
      expect(String(payload.error)).not.toMatch(/\n\s+at /);
      const { results } = await env.DB.prepare("SELECT COUNT(*) AS n FROM events").all<{ n: number }>();
      expect(results[0]?.n).toBe(0);
    });

    it("a failure inside answers 500 without details", async () => {
      const broken = { ...env, DB: undefined as unknown as D1Database };
      const response = await send("/balances", {}, broken);
      expect(response.status).toBe(500);
      await expect(body(response)).resolves.toEqual({ error: "internal error" });
    });
  });

  describe("the account-history projection, in a Durable Object per account", () => {
    const stub = (account: string): DurableObjectStub<AccountHistory> => env.ACCOUNT_HISTORY.get(env.ACCOUNT_HISTORY.idFromName(account));

    /** Notifies the object's daemon and runs its alarm, until the account has no lag (the real alarm may run too). */
    async function caughtUp(account: string): Promise<AccountHistoryView> {
      for (let round = 0; round < 10; round++) {
        await runInDurableObject(stub(account), async (instance: AccountHistory) => {
          await instance.notify(account);
          await instance.alarm();
        });
        const view = await body<AccountHistoryView>(await send(`/accounts/${account}/history`));
        if (view.lag === 0) return view;
      }
      throw new Error(`the history of ${account} did not catch up`);
    }

    it("projects each account's events, with running balances, exactly once", async () => {
      const appended = await body<{ appended: number[] }>(
        await post("/events", [
          { account: "ivy", amount: 5 },
          { account: "jon", amount: 1 },
          { account: "ivy", amount: -2 },
        ]),
      );
      const [first, , third] = appended.appended;
      await post("/events", { account: "ivy", amount: 10 }); // a second notification while the first may be pending
      const ivy = await caughtUp("ivy");
      expect(ivy.entries.map(({ amount, balance }) => ({ amount, balance }))).toEqual([
        { amount: 10, balance: 13 },
        { amount: -2, balance: 3 },
        { amount: 5, balance: 5 },
      ]);
      expect(ivy.entries.at(-1)?.position).toBe(first);
      expect(ivy.entries.at(-2)?.position).toBe(third);
      expect(ivy.position).toBe(ivy.entries[0]?.position);
      await runInDurableObject(stub("ivy"), (instance: AccountHistory) => instance.alarm()); // an overlapping trigger changes nothing
      await expect(caughtUp("ivy")).resolves.toEqual(ivy);
      await expect(caughtUp("jon")).resolves.toMatchObject({ account: "jon", lag: 0, entries: [{ amount: 1, balance: 1 }] });
    });

    it("reports its lag, and an unknown account is a 404", async () => {
      // No alarm is ever set for kim (notify would set one, and it could fire at any time): the projection runs only here.
      await env.DB.prepare("INSERT INTO events (account, amount) VALUES ('kim', 2)").run();
      await runInDurableObject(stub("kim"), async (instance: AccountHistory, state) => {
        await state.storage.put("account", "kim");
        await instance.catchUp();
      });
      await env.DB.prepare("INSERT INTO events (account, amount) VALUES ('kim', 3), ('kim', 4)").run(); // not yet projected
      const behind = await body<AccountHistoryView>(await send("/accounts/kim/history"));
      expect(behind).toMatchObject({ lag: 2, entries: [{ amount: 2, balance: 2 }] });
      await expect(caughtUp("kim")).resolves.toMatchObject({
        lag: 0,
        entries: [
          { amount: 4, balance: 9 },
          { amount: 3, balance: 5 },
          { amount: 2, balance: 2 },
        ],
      });
      expect((await send("/accounts/nobody/history")).status).toBe(404);
      expect((await send("/accounts/a%20b/history")).status).toBe(400);
    });

    it("an unknown account's history is a 404 that creates no object; a known account's still answers", async () => {
      // listDurableObjectIds lists the objects that have storage (Miniflare reads the namespace's
      // directory of <id>.sqlite files): an object that was only started, and ran its constructor's
      // CREATE TABLE, is listed.
      const stored = async (): Promise<string[]> => (await listDurableObjectIds(env.ACCOUNT_HISTORY)).map((id) => id.toString());
      const before = await stored();
      for (const account of ["nobody-1", "nobody-2", "nobody-3"]) {
        const response = await send(`/accounts/${account}/history`);
        expect(response.status).toBe(404);
        await expect(body(response)).resolves.toEqual({ error: "no such account" });
        expect(await stored()).not.toContain(env.ACCOUNT_HISTORY.idFromName(account).toString());
      }
      expect(await stored()).toEqual(before);

      // The check can see an object: a known account's read reaches its object, which is then listed.
      await env.DB.prepare("INSERT INTO events (account, amount) VALUES ('olga', 3), ('olga', 4)").run(); // no notification
      const known = await send("/accounts/olga/history");
      expect(known.status).toBe(200);
      await expect(body(known)).resolves.toEqual({ account: "olga", position: 0, lag: 2, entries: [] });
      expect(await stored()).toContain(env.ACCOUNT_HISTORY.idFromName("olga").toString());
    });

    it("an admin reset rebuilds one account's history from the log", async () => {
      await post("/events", [
        { account: "lea", amount: 7 },
        { account: "lea", amount: 1 },
      ]);
      const before = await caughtUp("lea");
      await runInDurableObject(stub("lea"), (_instance, state) => {
        state.storage.sql.exec("UPDATE history SET balance = 999"); // a corrupted read model
      });
      const denied = await send("/admin/projections/history/lea/reset", { method: "POST" });
      expect(denied.status).toBe(401);
      const response = await send("/admin/projections/history/lea/reset", { method: "POST", headers: admin });
      expect(response.status).toBe(202);
      await expect(body(response)).resolves.toEqual({ reset: "history", account: "lea", rebuilding: true });
      await expect(caughtUp("lea")).resolves.toEqual(before);
    });
  });

  describe("read-your-writes: ?min_position=", () => {
    it("waits for the projection to apply the position an append answered, running it if needed", async () => {
      // Appended behind the Worker's back: no run was started for them.
      const { results } = await env.DB.prepare("INSERT INTO events (account, amount) VALUES ('max', 4), ('max', 5) RETURNING position").all<{
        position: number;
      }>();
      const newest = results.at(-1)?.position ?? 0;
      const response = await send(`/balances/max?min_position=${newest}`);
      expect(response.status).toBe(200);
      expect(Number(response.headers.get("x-projection-position"))).toBeGreaterThanOrEqual(newest);
      await expect(body(response)).resolves.toEqual({ account: "max", balance: 9, events: 2 });
      const list = await send(`/balances?min_position=${newest}`);
      expect(list.status).toBe(200);
    });

    it("answers 503 with retry-after when the projection does not get to an existing position in time", async () => {
      // Another run holds the projections' lease (and never finishes): the run this read starts stops at once.
      await env.DB.prepare("INSERT INTO projection_leases (name, holder, expires_at) VALUES (?1, 'another-run', 9e15)").bind(LEDGER_PROJECTIONS).run();
      const { results } = await env.DB.prepare("INSERT INTO events (account, amount) VALUES ('ned', 1) RETURNING position").all<{ position: number }>();
      const newest = results[0]?.position ?? 0;
      const counted = countD1(env.DB);
      const response = await send(`/balances?min_position=${newest}`, {}, { ...env, DB: counted.db });
      expect(response.status).toBe(503);
      // it waited: the checkpoint was polled again and again before giving up
      expect(counted.calls.filter((call) => call.sql.some((sql) => sql.startsWith("SELECT position FROM checkpoints"))).length).toBeGreaterThan(2);
      expect(response.headers.get("retry-after")).toBe("1");
      await expect(body(response)).resolves.toEqual({ error: `the balances projection has not reached position ${newest} yet` });
    });

    it("a position beyond the newest event is a 409 at once, with no retry-after and no projection run", async () => {
      // Appended behind the Worker's back: the projection has not run, so a run would move its checkpoint.
      const { results } = await env.DB.prepare("INSERT INTO events (account, amount) VALUES ('pia', 1), ('pia', 2) RETURNING position").all<{
        position: number;
      }>();
      const newest = results.at(-1)?.position ?? 0;
      const counted = countD1(env.DB);
      for (const path of [`/balances?min_position=${newest + 1}`, `/balances/pia?min_position=${newest + 1}`, "/balances?min_position=999999999"]) {
        counted.clear();
        const response = await send(path, {}, { ...env, DB: counted.db });
        expect(response.status, path).toBe(409);
        expect(response.headers.get("retry-after"), path).toBeNull();
        const position = Number(new URL(path, "http://x").searchParams.get("min_position"));
        await expect(body(response)).resolves.toEqual({ error: `position ${position} does not exist yet: the newest event is at ${newest}` });
        expect(counted.calls, path).toHaveLength(1); // the checkpoint and the newest position, in one round trip; no run
      }
      expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM checkpoints").first<{ n: number }>())?.n).toBe(0); // no run moved it

      // The newest position itself is still waited for (and projected).
      const response = await send(`/balances/pia?min_position=${newest}`);
      expect(response.status).toBe(200);
      expect(Number(response.headers.get("x-projection-position"))).toBe(newest);
      await expect(body(response)).resolves.toEqual({ account: "pia", balance: 3, events: 2 });
    });

    it("min_position=0 on an empty log is already reached (not a 503 forever)", async () => {
      const counted = countD1(env.DB);
      const response = await send("/balances?min_position=0", {}, { ...env, DB: counted.db });
      expect(response.status).toBe(200);
      expect(counted.calls.filter((call) => call.sql.some((sql) => sql.startsWith("SELECT position FROM checkpoints")))).toEqual([]); // no waiting: nothing polled
      expect(response.headers.get("x-projection-position")).toBe("0");
    });

    it.each(["-1", "1.5", "x", ""])("min_position=%s is a 400", async (value) => {
      expect((await send(`/balances?min_position=${value}`)).status).toBe(400);
    });
  });

  describe("HTTP edges", () => {
    it.each([
      ["/balances/%E0%A4%A", "the path has a malformed percent-escape"],
      ["/balances/%", "the path has a malformed percent-escape"],
      ["/accounts/%/history", "the path has a malformed percent-escape"],
      ["/admin/projections/history/%E0%A4%A/reset", "the path has a malformed percent-escape"],
      ["/admin/holds/%/release", "the path has a malformed percent-escape"],
      ["/admin/projections/%/reset", "malformed escape in the path"], // the package's admin handler
    ])("a malformed percent-escape in %s is a 400", async (path, error) => {
      const response = await send(path, { method: path.startsWith("/admin") ? "POST" : "GET", headers: admin });
      expect(response.status).toBe(400);
      await expect(body(response)).resolves.toEqual({ error });
    });

    it("the body limit counts bytes, not characters", async () => {
      const text = JSON.stringify({ account: "a", amount: 1, note: "é".repeat(40 * 1024) }); // about 40 K characters, 80 KB
      const response = await send("/events", { method: "POST", body: text, headers: { "content-type": "application/json" } });
      expect(response.status).toBe(413);
    });

    it("a 5 MB body is refused without being read whole", async () => {
      let pulled = 0;
      const chunk = new Uint8Array(64 * 1024).fill(0x20);
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          pulled += 1;
          if (pulled > 80) controller.close();
          else controller.enqueue(chunk);
        },
      });
      const response = await send("/events", { method: "POST", body: stream, headers: { "content-type": "application/json" } });
      expect(response.status).toBe(413);
      expect(pulled).toBeLessThan(5); // stopped just past 64 KiB, not at 5 MB
    });

    it("a declared content-length over the limit is refused before reading", async () => {
      const response = await send("/events", {
        method: "POST",
        body: "{}",
        headers: { "content-type": "application/json", "content-length": String(5 * 1024 * 1024) },
      });
      expect(response.status).toBe(413);
    });

    it.each([
      ["application/json; charset=utf-8", 201],
      ["Application/JSON", 201],
      ["application/jsonp", 415],
      ["application/json-seq", 415],
      ["text/plain", 415],
    ] as const)("content-type %s → %i", async (type, status) => {
      const response = await send("/events", { method: "POST", body: JSON.stringify({ account: "a", amount: 1 }), headers: { "content-type": type } });
      expect(response.status).toBe(status);
    });

    it("HEAD works where GET does, with no body", async () => {
      await post("/events", { account: "hal", amount: 4 });
      for (const path of ["/", "/balances", "/balances/hal", "/balances/nobody", "/admin/api/projections", "/admin/holds"]) {
        const [get, head] = [await send(path, { headers: admin }), await send(path, { method: "HEAD", headers: admin })];
        expect(head.status, path).toBe(get.status);
        expect([...head.headers], path).toEqual([...get.headers]);
        expect(await head.text(), path).toBe("");
      }
      const wrong = await send("/events", { method: "GET" });
      expect(wrong.headers.get("allow")).toBe("POST");
      const allowed = await send("/balances", { method: "DELETE" });
      expect(allowed.status).toBe(405);
      expect(allowed.headers.get("allow")).toBe("GET, HEAD");
    });

    it.each(["bearer", "BEARER", "Bearer"])("the %s scheme is accepted (schemes are case-insensitive)", async (scheme) => {
      const response = await send("/admin/api/projections", { headers: { authorization: `${scheme} ${TOKEN}` } });
      expect(response.status).toBe(200);
    });
  });

  it("its checkpoint migrations are the package's SCHEMA", () => {
    const copies = env.TEST_MIGRATIONS.filter((m) => ["0001_checkpoints.sql", "0004_projection_operations.sql", "0007_projection_versions.sql", "0008_fewer_rows_and_run_log.sql"].includes(m.name));
    expect(copies).toHaveLength(4);
    const queries = copies.flatMap((m) => m.queries).map((q) => q.trim().replace(/;$/, ""));
    expect(queries).toEqual(schemaStatements(SCHEMA));
  });
});
