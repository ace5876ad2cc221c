import { env } from "cloudflare:workers";
import { Hono } from "hono";
import { expect, it } from "vitest";
import { adminHandler, bearerToken } from "../src/admin.js";
import { D1CheckpointStore } from "../src/index.js";

// The admin handler mounted the two ways the README shows: in a plain Worker's
// fetch, and in a Hono app, both answering everything else themselves.

const TOKEN = "0123456789abcdef0123456789abcdef";
const headers = { authorization: `Bearer ${TOKEN}` };

function admin(): (request: Request) => Promise<Response | undefined> {
  return adminHandler({ store: new D1CheckpointStore(env.DB), auth: bearerToken(TOKEN) });
}

it("in a plain Worker: the admin answers under /admin, the app everything else", async () => {
  const worker = {
    async fetch(request: Request): Promise<Response> {
      return (await admin()(request)) ?? new Response("app", { status: 200 });
    },
  };
  await new D1CheckpointStore(env.DB).save("mounted-plain", 1);
  const listed = await worker.fetch(new Request("http://app.test/admin/api/projections", { headers }));
  expect(listed.status).toBe(200);
  expect(JSON.stringify(await listed.json())).toContain("mounted-plain");
  expect(await (await worker.fetch(new Request("http://app.test/orders"))).text()).toBe("app");
});

it("in Hono: app.all('/admin/*') hands the raw request over, and falls through when it answers undefined", async () => {
  const app = new Hono();
  app.all("/admin", async (c, next) => (await admin()(c.req.raw)) ?? next());
  app.all("/admin/*", async (c, next) => (await admin()(c.req.raw)) ?? next());
  app.get("/orders", (c) => c.text("orders"));
  const page = await app.request("http://app.test/admin");
  expect(page.status).toBe(200);
  expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
  expect(await page.text()).toContain("/admin/login");
  const listed = await app.request("http://app.test/admin/api/projections", { headers });
  expect(listed.status).toBe(200);
  expect((await app.request("http://app.test/orders")).status).toBe(200);
  expect((await app.request("http://app.test/admin/nope", { headers })).status).toBe(404);
});
