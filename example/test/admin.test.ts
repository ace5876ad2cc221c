import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { renderAdminPage } from "../src/admin-page.js";
import { SESSION_COOKIE } from "../src/admin-session.js";
import worker from "../src/worker.js";

const TOKEN = "test-admin-token";
const ORIGIN = "http://example.test";
const bearer = { authorization: `Bearer ${TOKEN}` };
const form = { "content-type": "application/x-www-form-urlencoded" };

/** Sends a request through the Worker and waits for its background work (the projection). */
async function send(path: string, init: RequestInit = {}, bindings: Cloudflare.Env = env, origin = ORIGIN): Promise<Response> {
  const ctx = createExecutionContext();
  const request = new Request(`${origin}${path}`, init) as Parameters<typeof worker.fetch>[0];
  const response = await worker.fetch(request, bindings, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

/** Logs in through the form; returns the `cookie` request header that carries the session. */
async function login(token = TOKEN): Promise<string> {
  const response = await send("/admin/login", { method: "POST", body: new URLSearchParams({ token }).toString(), headers: form });
  expect(response.status).toBe(303);
  const cookie = response.headers.get("set-cookie") ?? "";
  return cookie.split(";", 1)[0] ?? "";
}

/** A form post the way the page's buttons send it: the session cookie, same origin. */
function submit(path: string, cookie: string, fields: Record<string, string> = {}, headers: Record<string, string> = {}): Promise<Response> {
  return send(path, {
    method: "POST",
    body: new URLSearchParams(fields).toString(),
    headers: { ...form, cookie, origin: ORIGIN, "sec-fetch-site": "same-origin", ...headers },
  });
}

/** The page a 303 leads to, as the browser would load it. */
async function follow(response: Response, cookie: string): Promise<string> {
  expect(response.status).toBe(303);
  const location = response.headers.get("location") ?? "";
  expect(location).toMatch(/^\/admin(\?notice=[^&]*)?$/);
  return (await send(location, { headers: { cookie } })).text();
}

async function page(cookie: string): Promise<string> {
  const response = await send("/admin", { headers: { cookie } });
  expect(response.status).toBe(200);
  return response.text();
}

function appendEvent(account: string, amount: number): Promise<Response> {
  return send("/events", { method: "POST", body: JSON.stringify({ account, amount }), headers: { "content-type": "application/json" } });
}

beforeEach(async () => {
  await env.DB.batch([
    env.DB.prepare("DELETE FROM events"),
    env.DB.prepare("DELETE FROM balances"),
    env.DB.prepare("DELETE FROM checkpoints"),
    env.DB.prepare("DELETE FROM parked_events"),
    env.DB.prepare("DELETE FROM holds"),
  ]);
});

describe("the admin page", () => {
  describe("login", () => {
    it("without a session, GET /admin is the login form, under a strict CSP and never cached", async () => {
      const response = await send("/admin");
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(response.headers.get("cache-control")).toBe("no-store");
      const csp = response.headers.get("content-security-policy") ?? "";
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("form-action 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toMatch(/script-src|unsafe-inline/);
      expect(response.headers.get("referrer-policy")).toBe("same-origin"); // no-referrer would make the page's own posts Origin: null
      const text = await response.text();
      expect(text).toContain('<form method="post" action="/admin/login">');
      expect(text).toContain('type="password" name="token"');
      expect(text).not.toContain("<script");
      expect(text).not.toContain("Ledger admin</h1>\n<p class=\"notice\"");
    });

    it("the right token sets an HttpOnly, SameSite=Strict session cookie that does not contain the token", async () => {
      const response = await send("/admin/login", { method: "POST", body: `token=${TOKEN}`, headers: form });
      expect(response.status).toBe(303);
      expect(response.headers.get("location")).toBe("/admin");
      const cookie = response.headers.get("set-cookie") ?? "";
      expect(cookie).toMatch(new RegExp(`^${SESSION_COOKIE}=[0-9]+\\.[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=/admin; Max-Age=3600$`));
      expect(cookie).not.toContain(TOKEN);
      const expiry = Number(/=([0-9]+)\./.exec(cookie)?.[1]);
      expect(expiry - Date.now()).toBeGreaterThan(3590_000);
      expect(expiry - Date.now()).toBeLessThanOrEqual(3600_000);
      expect(await page(cookie.split(";", 1)[0] ?? "")).toContain("Log out");
    });

    it("over https the cookie is also Secure", async () => {
      const response = await send("/admin/login", { method: "POST", body: `token=${TOKEN}`, headers: form }, env, "https://example.test");
      expect(response.headers.get("set-cookie")).toMatch(/; Secure$/);
    });

    it.each([
      ["a wrong token", "token=wrong"],
      ["a token prefix", `token=${TOKEN.slice(0, -1)}`],
      ["no token", ""],
    ])("%s: 401, the form again with an error line, no cookie", async (_, body) => {
      const response = await send("/admin/login", { method: "POST", body, headers: form });
      expect(response.status).toBe(401);
      expect(response.headers.get("set-cookie")).toBeNull();
      const text = await response.text();
      expect(text).toContain("Wrong token.");
      expect(text).toContain('name="token"');
    });

    it("the token is only accepted as a form body", async () => {
      const response = await send(`/admin/login?token=${TOKEN}`, { method: "POST", body: JSON.stringify({ token: TOKEN }), headers: { "content-type": "application/json" } });
      expect(response.status).toBe(415);
      expect(response.headers.get("set-cookie")).toBeNull();
      expect((await send("/admin/login", { headers: form })).status).toBe(405);
    });

    it("logout clears the cookie", async () => {
      const cookie = await login();
      const response = await submit("/admin/logout", cookie);
      expect(response.status).toBe(303);
      expect(response.headers.get("set-cookie")).toBe(`${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/admin; Max-Age=0`);
    });

    it("with no ADMIN_TOKEN, the page and login are disabled (403)", async () => {
      for (const token of [undefined, ""]) {
        const bindings = { ...env, ADMIN_TOKEN: token };
        const get = await send("/admin", {}, bindings);
        expect(get.status).toBe(403);
        expect(await get.text()).toContain("disabled");
        const post = await send("/admin/login", { method: "POST", body: "token=", headers: form }, bindings);
        expect(post.status).toBe(403);
      }
    });
  });

  describe("the session cookie", () => {
    it.each([
      ["no cookie", ""],
      ["a tampered expiry", "tamper-expiry"],
      ["a tampered signature", "tamper-signature"],
      ["an expired session", "expired"],
      ["the token itself", "token"],
      ["garbage", `${SESSION_COOKIE}=abc`],
    ])("%s is not a session", async (_, kind) => {
      const good = await login();
      const [expiry = "", signature = ""] = good.slice(SESSION_COOKIE.length + 1).split(".");
      const flip = (s: string): string => (s.startsWith("A") ? "B" : "A") + s.slice(1);
      const cookie = {
        "": "",
        "tamper-expiry": `${SESSION_COOKIE}=${Number(expiry) + 1}.${signature}`,
        "tamper-signature": `${SESSION_COOKIE}=${expiry}.${flip(signature)}`,
        expired: `${SESSION_COOKIE}=${Date.now() - 1}.${signature}`,
        token: `${SESSION_COOKIE}=${TOKEN}`,
      }[kind] ?? kind;
      const text = await (await send("/admin", { headers: { cookie } })).text();
      expect(text).toContain('action="/admin/login"');
      expect(text).not.toContain("Log out");
      const post = await submit("/admin/projections/balances/reset", cookie);
      expect(post.status).toBe(401);
      expect(await post.text()).toContain("log in again");
      const listing = await send("/admin/checkpoints", { headers: { cookie } });
      expect(listing.status).toBe(401);
      await expect(listing.json()).resolves.toEqual({ error: "a valid admin bearer token is required" });
    });

    it("a session signed with another token ends when the token changes", async () => {
      const cookie = await login();
      const response = await send("/admin", { headers: { cookie } }, { ...env, ADMIN_TOKEN: "a-new-token" });
      expect(await response.text()).toContain('action="/admin/login"');
    });

    it("authenticates the JSON routes too", async () => {
      const cookie = await login();
      const response = await send("/admin/checkpoints", { headers: { cookie } });
      expect(response.status).toBe(200);
      await expect(response.json()).resolves.toMatchObject({ checkpoints: [] });
    });

    it.each([
      ["a foreign Origin", { origin: "https://evil.test" }],
      ["an Origin on another port", { origin: "http://example.test:8080" }],
      ["Origin null", { origin: "null" }],
      ["Sec-Fetch-Site cross-site", { "sec-fetch-site": "cross-site" }],
      ["Sec-Fetch-Site same-site", { "sec-fetch-site": "same-site" }],
    ])("a cookie-authenticated POST with %s is refused (403) and changes nothing", async (_, headers: Record<string, string>) => {
      await appendEvent("ann", 5);
      const cookie = await login();
      const response = await send("/admin/projections/balances/reset", { method: "POST", body: "", headers: { ...form, cookie, ...headers } });
      expect(response.status).toBe(403);
      expect(await response.text()).toContain("cross-origin request refused");
      await expect((await send("/balances/ann")).json()).resolves.toMatchObject({ balance: 5 });
      const login403 = await send("/admin/login", { method: "POST", body: `token=${TOKEN}`, headers: { ...form, ...headers } });
      expect(login403.status).toBe(403);
      expect(login403.headers.get("set-cookie")).toBeNull();
    });

    it("a same-origin POST without Origin or Sec-Fetch-Site passes (older clients), and Bearer callers are not asked", async () => {
      const cookie = await login();
      const plain = await send("/admin/projections/balances/reset", { method: "POST", body: "", headers: { ...form, cookie } });
      expect(plain.status).toBe(303);
      const typed = await send("/admin/projections/balances/reset", { method: "POST", headers: { cookie, "sec-fetch-site": "none" } });
      expect(typed.status).toBe(303);
      const script = await send("/admin/projections/balances/reset", { method: "POST", headers: { ...bearer, origin: "https://elsewhere.test" } });
      expect(script.status).toBe(202);
      await expect(script.json()).resolves.toEqual({ reset: "balances", rebuilding: true });
    });
  });

  describe("what the page shows", () => {
    it("a row per projection with position, lag, time since it moved, parked count and a Reset button", async () => {
      await appendEvent("bea", 3);
      await env.DB.prepare("INSERT INTO events (account, amount) VALUES ('bea', 1)").run(); // not projected yet: a lag of 1
      await env.DB.prepare("INSERT INTO checkpoints (name, position) VALUES ('other', 0)").run();
      const { n: newest } = (await env.DB.prepare("SELECT MAX(position) AS n FROM events").first<{ n: number }>()) ?? { n: 0 };
      const text = await page(await login());
      expect(text).toContain(`Newest event: ${newest}`);
      expect(text).toMatch(
        new RegExp(
          `<tr><td>balances</td><td class="number">${newest - 1}</td><td class="number">1</td><td class="number">(\\d+|—)</td><td class="number">0</td>` +
            '<td><form class="inline" method="post" action="/admin/projections/balances/reset"><button type="submit">Reset</button></form></td></tr>',
        ),
      );
      expect(text).toContain(`<tr><td>other</td><td class="number">0</td><td class="number">${newest}</td>`);
      expect(text).toContain('<form class="hold" method="post" action="/admin/holds">');
      expect(text).toContain('<input name="account"');
      expect(text).toContain('action="/admin/logout"');
    });

    it("corrupt checkpoint rows are shown as corrupt, not a 500", async () => {
      await env.DB.prepare("INSERT INTO checkpoints (name, position) VALUES ('a-broken', 'abc'), ('b-fine', 3), ('c-negative', -1)").run();
      const text = await page(await login());
      expect(text).toContain('<tr><td>a-broken</td><td colspan="4" class="corrupt">corrupt: stored position &quot;abc&quot;</td>');
      expect(text).toContain('<tr><td>c-negative</td><td colspan="4" class="corrupt">corrupt: stored position &quot;-1&quot;</td>');
      expect(text).toContain("<tr><td>b-fine</td>");
    });

    it("escapes HTML in projection names and notices", async () => {
      const evil = `<img src=x onerror="alert(1)">&'`;
      await env.DB.prepare("INSERT INTO checkpoints (name, position) VALUES (?1, 1)").bind(evil).run();
      const cookie = await login();
      const response = await send(`/admin?notice=${encodeURIComponent("<script>alert(2)</script>")}`, { headers: { cookie } });
      const text = await response.text();
      expect(text).toContain("<td>&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;&#39;</td>");
      expect(text).toContain('<p class="notice" role="status">&lt;script&gt;alert(2)&lt;/script&gt;</p>');
      expect(text).not.toContain("<img");
      expect(text).not.toContain("<script");
    });

    it("escapes HTML in parked events' error messages", async () => {
      await env.DB.prepare("INSERT INTO parked_events (name, position, error, parked_at) VALUES ('balances', 41, ?1, 0)")
        .bind(`<img src=x onerror="alert(3)">`)
        .run();
      const text = await page(await login());
      expect(text).toContain('<td>&lt;img src=x onerror=&quot;alert(3)&quot;&gt;</td><td>1970-01-01T00:00:00.000Z</td>');
      expect(text).not.toContain("<img");
    });

    it("escapes HTML in parked events' error messages (rendering)", () => {
      const text = renderAdminPage({
        newest: 9,
        projections: [],
        parkedOf: "balances",
        parked: [{ name: "balances", position: 7, error: `</td><script>alert("x")</script>`, parkedAt: new Date(0) }],
        parkedTotal: 1,
        holds: ["h.1"],
      });
      expect(text).toContain("<td>&lt;/td&gt;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</td><td>1970-01-01T00:00:00.000Z</td>");
      expect(text).toContain('action="/admin/projections/balances/parked/7/replay"><button type="submit">Replay</button>');
      expect(text).toContain('<tr><td>h.1</td><td><form class="inline" method="post" action="/admin/holds/h.1/release"><button type="submit">Release</button></form></td></tr>');
      expect(text).not.toContain("<script");
    });

    it("serves its stylesheet (the CSP allows no inline style), and only GET", async () => {
      const css = await send("/admin/style.css");
      expect(css.status).toBe(200);
      expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
      expect((await send("/admin/style.css", { method: "POST" })).status).toBe(405);
    });

    it("HEAD /admin is GET without the body", async () => {
      const cookie = await login();
      const head = await send("/admin", { method: "HEAD", headers: { cookie } });
      expect(head.status).toBe(200);
      expect(await head.text()).toBe("");
    });
  });

  describe("form flows: each answers 303 back to /admin with a notice", () => {
    it("reset clears the read model and rebuilds it", async () => {
      await appendEvent("cid", 4);
      await env.DB.prepare("UPDATE balances SET balance = 999").run();
      const cookie = await login();
      const text = await follow(await submit("/admin/projections/balances/reset", cookie), cookie);
      expect(text).toContain('<p class="notice" role="status">reset balances: rebuilding</p>');
      await expect((await send("/balances/cid")).json()).resolves.toMatchObject({ balance: 4 });
      const unknown = await submit("/admin/projections/nope/reset", cookie);
      expect(unknown.status).toBe(404);
      expect(await unknown.text()).toContain("no projection named nope");
    });

    it("hold, park, replay while held (fails, stays parked), release, replay", async () => {
      const cookie = await login();
      let text = await follow(await submit("/admin/holds", cookie, { account: "dora" }), cookie);
      expect(text).toContain("dora is on hold");
      expect(text).toContain('<tr><td>dora</td><td><form class="inline" method="post" action="/admin/holds/dora/release">');

      await appendEvent("dora", 6);
      await appendEvent("emil", 2); // other accounts go on
      await expect((await send("/balances/emil")).json()).resolves.toMatchObject({ balance: 2 });
      expect((await send("/balances/dora")).status).toBe(404);
      const parked = await env.DB.prepare("SELECT position FROM events WHERE account = 'dora'").first<{ position: number }>();
      const position = parked?.position ?? 0;
      text = await page(cookie);
      expect(text).toMatch(new RegExp(`<tr><td>balances</td><td class="number">${position}</td><td>[^<]+</td><td>\\d{4}-\\d\\d-\\d\\dT[^<]+</td><td><form class="inline" method="post" action="/admin/projections/balances/parked/${position}/replay">`));
      expect(text).toMatch(/<tr><td>balances<\/td><td class="number">\d+<\/td><td class="number">0<\/td><td class="number">(\d+|—)<\/td><td class="number">1<\/td>/);

      text = await follow(await submit(`/admin/projections/balances/parked/${position}/replay`, cookie), cookie);
      expect(text).toContain(`replaying ${position} failed: `);
      expect(text).toContain(`/admin/projections/balances/parked/${position}/replay`); // still parked

      text = await follow(await submit("/admin/holds/dora/release", cookie), cookie);
      expect(text).toContain("released dora");
      expect(text).not.toContain('action="/admin/holds/dora/release"');

      text = await follow(await submit(`/admin/projections/balances/parked/${position}/replay`, cookie), cookie);
      expect(text).toContain(`replayed ${position}`);
      expect(text).not.toContain(`/parked/${position}/replay`);
      expect(text).toContain("Nothing parked.");
      await expect((await send("/balances/dora")).json()).resolves.toMatchObject({ balance: 6, events: 1 });

      text = await follow(await submit(`/admin/projections/balances/parked/${position}/replay`, cookie), cookie);
      expect(text).toContain('<p class="notice" role="status">not parked</p>');
    });

    it("bad input in a form is refused with its status and a message page", async () => {
      const cookie = await login();
      const hold = await submit("/admin/holds", cookie, { account: "a b" });
      expect(hold.status).toBe(400);
      expect(hold.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(await hold.text()).toContain("account must be 1 to 64");
      expect((await submit("/admin/projections/balances/parked/1.5/replay", cookie)).status).toBe(400);
      expect((await submit("/admin/projections/balances/parked/1/replay", cookie, {}, { origin: "https://evil.test" })).status).toBe(403);
      expect((await send("/admin/holds", { headers: { cookie } })).status).toBe(405);
    });

    it("JSON callers get JSON: Bearer, or a session with accept: application/json", async () => {
      const held = await send("/admin/holds", { method: "POST", body: JSON.stringify({ account: "finn" }), headers: { ...bearer, "content-type": "application/json" } });
      expect(held.status).toBe(201);
      await expect(held.json()).resolves.toEqual({ held: "finn" });
      const [position = 0] = (await (await appendEvent("gus", 1)).json<{ appended: number[] }>()).appended; // projected, never parked
      const notParked = await send(`/admin/projections/balances/parked/${position}/replay`, { method: "POST", headers: bearer });
      expect(notParked.status).toBe(404);
      await expect(notParked.json()).resolves.toEqual({ error: "not parked" });
      const cookie = await login();
      const released = await submit("/admin/holds/finn/release", cookie, {}, { accept: "application/json" });
      expect(released.status).toBe(200);
      await expect(released.json()).resolves.toEqual({ released: "finn" });
    });
  });
});
