import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { adminHandler, bearerToken } from "../src/admin.js";
import { CheckpointRangeError, D1CheckpointStore } from "../src/index.js";

// bearerToken's two guards: a session belongs to the handler (base path)
// that opened it, and a token that is plainly not random is refused when
// the handler is configured.

const TOKEN = "0123456789abcdef0123456789abcdef";
const form = { "content-type": "application/x-www-form-urlencoded" };

function handler(basePath: string): (request: Request) => Promise<Response | undefined> {
  return adminHandler({ store: new D1CheckpointStore(env.DB), auth: bearerToken(TOKEN), basePath });
}

async function send(h: (request: Request) => Promise<Response | undefined>, url: string, init: RequestInit = {}): Promise<Response> {
  const response = await h(new Request(url, init));
  if (response === undefined) throw new Error(`not handled: ${url}`);
  return response;
}

/** Logs in to the handler at `base` of `origin`; answers its whole Set-Cookie value. */
async function login(h: (request: Request) => Promise<Response | undefined>, origin: string, base: string): Promise<string> {
  const response = await send(h, `${origin}${base}/login`, { method: "POST", headers: { ...form, origin }, body: `token=${TOKEN}` });
  expect(response.status).toBe(303);
  return response.headers.get("set-cookie") ?? "";
}

const pair = (cookie: string): string => cookie.split(";", 1)[0] ?? "";

describe("a session belongs to its handler's base path", () => {
  it("two handlers that share a token do not accept each other's sessions", async () => {
    const admin = handler("/admin");
    const ops = handler("/ops");
    const opsCookie = pair(await login(ops, "http://app.test", "/ops"));
    expect((await send(ops, "http://app.test/ops/api/projections", { headers: { cookie: opsCookie } })).status).toBe(200);
    expect((await send(admin, "http://app.test/admin/api/projections", { headers: { cookie: opsCookie } })).status).toBe(401);
    // not even under the other handler's cookie name: the MAC covers the base path
    const adminCookie = pair(await login(admin, "http://app.test", "/admin"));
    const [adminName = ""] = adminCookie.split("=", 1);
    const opsValue = opsCookie.slice(opsCookie.indexOf("=") + 1);
    expect((await send(admin, "http://app.test/admin/api/projections", { headers: { cookie: `${adminName}=${opsValue}` } })).status).toBe(401);
    expect((await send(admin, "http://app.test/admin/api/projections", { headers: { cookie: adminCookie } })).status).toBe(200);
  });

  it("over https their __Host- cookies have different names, so logging into one keeps the other's session", async () => {
    const admin = handler("/admin");
    const ops = handler("/ops/projections");
    const adminCookie = await login(admin, "https://app.test", "/admin");
    const opsCookie = await login(ops, "https://app.test", "/ops/projections");
    expect(adminCookie).toMatch(/^__Host-admin_session=/);
    expect(opsCookie).toMatch(/^__Host-admin_session_[A-Za-z0-9_-]+=/);
    expect(pair(opsCookie).split("=", 1)[0]).not.toBe(pair(adminCookie).split("=", 1)[0]);
    for (const cookie of [adminCookie, opsCookie]) expect(cookie).toContain("; Path=/;");
    // the browser keeps both and sends both: each handler finds its own
    const both = `${pair(adminCookie)}; ${pair(opsCookie)}`;
    expect((await send(admin, "https://app.test/admin/api/projections", { headers: { cookie: both } })).status).toBe(200);
    expect((await send(ops, "https://app.test/ops/projections/api/projections", { headers: { cookie: both } })).status).toBe(200);
    const logout = await send(ops, "https://app.test/ops/projections/logout", { method: "POST", headers: { origin: "https://app.test" } });
    expect(logout.headers.get("set-cookie")).toBe(`${pair(opsCookie).split("=", 1)[0] ?? ""}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0; Secure`);
  });

  it("authorize without a base path (a route of your own beside the handler) takes the session of the base its path is under", async () => {
    const auth = bearerToken(TOKEN);
    const admin = adminHandler({ store: new D1CheckpointStore(env.DB), auth });
    const ops = adminHandler({ store: new D1CheckpointStore(env.DB), auth, basePath: "/ops" });
    const adminCookie = pair(await login(admin, "http://app.test", "/admin"));
    const opsCookie = pair(await login(ops, "http://app.test", "/ops"));
    const at = (path: string, cookie: string): Request => new Request(`http://app.test${path}`, { headers: { cookie } });
    await expect(auth.authorize(at("/admin/holds", adminCookie))).resolves.toMatchObject({ method: "session", ambient: true });
    await expect(auth.authorize(at("/admin/holds", opsCookie))).resolves.toBeUndefined();
    await expect(auth.authorize(at("/elsewhere", adminCookie))).resolves.toBeUndefined();
    await expect(auth.authorize(at("/admin/holds", adminCookie), "/ops")).resolves.toBeUndefined();
    await expect(auth.authorize(at("/ops/x", opsCookie), "/ops")).resolves.toMatchObject({ method: "session" });
  });
});

describe("a token that is plainly not random is refused when configured", () => {
  it.each([
    ["32 identical characters", "a".repeat(32)],
    ["32 zero-width spaces", "\u200b".repeat(32)],
    ["32 NULs", "\u0000".repeat(32)],
    ["a control character inside", `${TOKEN.slice(0, 16)}\u0007${TOKEN.slice(16)}`],
    ["a soft hyphen inside (a format character)", `${TOKEN}\u00ad`],
    ["a lone surrogate", `${TOKEN}\ud800`],
    ["a no-break space", `${TOKEN}\u00a0`],
    ["two characters alternating", "ab".repeat(16)],
    ["four characters repeated", "abcd".repeat(8)],
    ["one character and a short tail", `${"a".repeat(24)}12345678`],
    ["the example's placeholder", "replace-with-the-output-of-openssl-rand-hex-16"],
    ["a change-me placeholder", "change-me-to-a-long-random-secret-value"],
    ["your-token-here", "your-token-here-0123456789abcdefghij"],
  ])("%s", (_label, token) => {
    const error = ((): unknown => {
      try {
        bearerToken(token);
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(CheckpointRangeError);
    expect(error).toMatchObject({ operation: "configure", argument: "token" });
    expect((error as Error).message).not.toContain(token);
  });

  it("random tokens of every usual shape are accepted", () => {
    const bytes = (n: number): Uint8Array => crypto.getRandomValues(new Uint8Array(n));
    const hex = (n: number): string => Array.from(bytes(n), (b) => b.toString(16).padStart(2, "0")).join("");
    const base64url = (n: number): string => btoa(String.fromCharCode(...bytes(n))).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
    for (let i = 0; i < 200; i++) {
      expect(typeof bearerToken(hex(16)).authorize).toBe("function"); // openssl rand -hex 16
      expect(typeof bearerToken(base64url(24)).authorize).toBe("function"); // openssl rand -base64 24, URL-safe
      expect(typeof bearerToken(hex(8), { minLength: 16 }).authorize).toBe("function");
    }
    for (const token of [TOKEN, "test-admin-token-0123456789abcdef", "correct-horse-battery-staple-7f3a9c", "Zx9!kQ2#mP7$wL4%nR8^tY6&vB3*hJ5("]) {
      expect(typeof bearerToken(token).authorize, token).toBe("function");
    }
  });
});
