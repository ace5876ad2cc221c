import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { adminHandler, bearerToken, type AdminAction, type AdminHandlerOptions } from "../src/admin.js";
import { D1CheckpointStore } from "../src/index.js";

// What the admin handler refuses before it does any work: a login body over
// its 4 KB limit (by Content-Length, or as it arrives without one), and any
// request the rate-limit hook refuses, whatever its route.

const TOKEN = "0123456789abcdef0123456789abcdef";
const ORIGIN = "http://app.test";
const form = { "content-type": "application/x-www-form-urlencoded", origin: ORIGIN };

function handler(options: Partial<AdminHandlerOptions> = {}): (request: Request) => Promise<Response | undefined> {
  return adminHandler({ store: new D1CheckpointStore(env.DB), auth: bearerToken(TOKEN), ...options });
}

async function send(h: (request: Request) => Promise<Response | undefined>, request: Request): Promise<Response> {
  const response = await h(request);
  if (response === undefined) throw new Error(`not handled: ${request.url}`);
  return response;
}

/** A body of `total` bytes in `chunk`-byte pieces, made only as it is read; `pulled.bytes` counts what was read. */
function countedBody(total: number, chunk: number, text = "a"): { body: ReadableStream<Uint8Array>; pulled: { bytes: number } } {
  const pulled = { bytes: 0 };
  const piece = new TextEncoder().encode(text.repeat(chunk).slice(0, chunk));
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled.bytes >= total) {
        controller.close();
        return;
      }
      pulled.bytes += piece.byteLength;
      controller.enqueue(piece.slice());
    },
  });
  return { body, pulled };
}

describe("the login body", () => {
  it("a Content-Length over 4 KB is a 413 before a byte of the body is read", async () => {
    const { body, pulled } = countedBody(1024 * 1024, 1024, `token=${TOKEN}&`);
    const request = new Request(`${ORIGIN}/admin/login`, { method: "POST", headers: { ...form, "content-length": String(32 * 1024 * 1024) }, body });
    const response = await send(handler(), request);
    expect(response.status).toBe(413);
    expect(response.headers.get("set-cookie")).toBeNull();
    expect(request.bodyUsed).toBe(false);
    expect(pulled.bytes).toBeLessThan(4096); // at most what the runtime pulls ahead by itself
  });

  it("a body without Content-Length is read only until it passes 4 KB, then refused with 413", async () => {
    const { body, pulled } = countedBody(8 * 1024 * 1024, 1024);
    const request = new Request(`${ORIGIN}/admin/login`, { method: "POST", headers: form, body });
    expect(request.headers.has("content-length")).toBe(false);
    const response = await send(handler(), request);
    expect(response.status).toBe(413);
    // 4 KB and the chunk that passed it, give or take what the runtime buffers ahead: nowhere near 8 MB
    expect(pulled.bytes).toBeGreaterThan(4096);
    expect(pulled.bytes).toBeLessThanOrEqual(64 * 1024);
  });

  it("a streamed body within the limit still logs in; 4,096 bytes is within, 4,097 is not", async () => {
    const token = `token=${TOKEN}`;
    const streamed = countedBody(token.length, token.length, token);
    const ok = await send(handler(), new Request(`${ORIGIN}/admin/login`, { method: "POST", headers: form, body: streamed.body }));
    expect(ok.status).toBe(303);
    expect(ok.headers.get("set-cookie")).toMatch(/^admin_session=/);
    const padded = (size: number): string => `${token}&pad=${"p".repeat(size - token.length - 5)}`;
    expect(padded(4096)).toHaveLength(4096);
    const within = await send(handler(), new Request(`${ORIGIN}/admin/login`, { method: "POST", headers: form, body: padded(4096) }));
    expect(within.status).toBe(303);
    const over = await send(handler(), new Request(`${ORIGIN}/admin/login`, { method: "POST", headers: form, body: padded(4097) }));
    expect(over.status).toBe(413);
  });

  it("the limit counts bytes, not characters", async () => {
    // 2,100 characters of two UTF-8 bytes each: 4,200 bytes
    const body = `token=${TOKEN}&pad=${"é".repeat(2100)}`;
    expect(body.length).toBeLessThan(4096);
    const response = await send(handler(), new Request(`${ORIGIN}/admin/login`, { method: "POST", headers: form, body }));
    expect(response.status).toBe(413);
  });
});

describe("the rate-limit hook", () => {
  it.each([
    ["GET /style.css", "/admin/style.css", {}, "read"],
    ["POST /logout", "/admin/logout", { method: "POST", headers: { origin: ORIGIN } }, "write"],
    ["POST /login", "/admin/login", { method: "POST", headers: form, body: `token=${TOKEN}` }, "login"],
    ["GET /login (a wrong method)", "/admin/login", {}, "login"],
    ["GET /", "/admin", {}, "read"],
    ["an unknown route", "/admin/nope", {}, "read"],
    ["POST an action", "/admin/projections/a/reset", { method: "POST" }, "write"],
  ] as const)("sees %s, and its refusal is a 429 before anything else", async (_label, path, init: RequestInit, action: AdminAction) => {
    const seen: AdminAction[] = [];
    const h = handler({ rateLimit: (_request, kind) => (seen.push(kind), false) });
    const response = await send(h, new Request(`${ORIGIN}${path}`, init));
    expect(seen).toEqual([action]);
    expect(response.status).toBe(429);
    expect(response.headers.get("retry-after")).toBe("60");
    expect(response.headers.get("set-cookie")).toBeNull();
  });

  it("allowed, the stylesheet and the logout answer as before", async () => {
    const h = handler({ rateLimit: () => true });
    const css = await send(h, new Request(`${ORIGIN}/admin/style.css`));
    expect(css.status).toBe(200);
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
    const logout = await send(h, new Request(`${ORIGIN}/admin/logout`, { method: "POST", headers: { origin: ORIGIN } }));
    expect(logout.status).toBe(303);
    expect(logout.headers.get("set-cookie")).toContain("Max-Age=0");
  });
});
