// The example's admin in a real browser (the package's admin page and the
// example's holds page): Debian's Chromium driven by playwright-core, against
// `npm start` as a user runs it. Not part of `npm test`: `npm run test:browser`
// (needs /usr/bin/chromium: apt-get install chromium).
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, freshExampleState, quietEnv, waitForOutput } from "../support/processes.js";

const root = path.resolve(import.meta.dirname, "../..");
/** The overview at the end (and admin-holds.png, admin-parked.png: the holds page, the event parked); the folder is not committed. */
const screenshot = path.join(import.meta.dirname, "screenshots", "admin.png");
const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const quiet = quietEnv;

/**
 * Clicks the button of the form that posts to `action`; resolves once the 303
 * has led back to the page at `to` with `expected` as its notice.
 */
async function press(page: Page, action: string, to: string, expected: string): Promise<void> {
  await Promise.all([
    page.waitForURL((url) => url.pathname === to && url.searchParams.get("notice") === expected),
    page.locator(`form[action="${action}"] button`).click(),
  ]);
  expect(await page.locator("p.notice").textContent()).toBe(expected);
}

describe("the admin page in Chromium", () => {
  let child: ChildProcess | undefined;
  let browser: Browser | undefined;
  let state: string | undefined;

  afterAll(async () => {
    await browser?.close();
    if (child?.pid !== undefined) process.kill(-child.pid, "SIGTERM"); // the whole process group
    if (state !== undefined) await rm(state, { recursive: true, force: true });
  });

  it("logs in, holds an account, sees its event parked, releases it and replays the event", async () => {
    // A fresh local D1 (and Durable Object storage) for this run only: `npm start` applies the
    // migrations to the default state, and its arguments go to `wrangler dev` only, so the
    // migrations are applied to the temporary state here first.
    state = await freshExampleState("admin-browser-");
    const [port, inspector] = [await freePort(), await freePort()];
    const token = randomBytes(24).toString("base64url");
    child = spawn(
      "npm",
      ["start", "--", "--port", String(port), "--inspector-port", String(inspector), "--var", `ADMIN_TOKEN:${token}`, "--persist-to", state],
      { cwd: root, detached: true, stdio: ["ignore", "pipe", "pipe"], env: quiet },
    );
    const base = `http://127.0.0.1:${port}`;
    await waitForOutput(child, `Ready on ${base}`);

    // One projected event, so the balances projection has a checkpoint to show.
    const warm = await fetch(`${base}/events`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ account: "warm", amount: 1 }) });
    const [warmPosition] = (await warm.json<{ appended: number[] }>()).appended;
    expect((await fetch(`${base}/balances/warm?min_position=${warmPosition ?? 0}`)).status).toBe(200);

    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const page = await browser.newPage();
    const violations: string[] = [];
    page.on("console", (message) => {
      if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
    });

    // The package's admin page: log in.
    await page.goto(`${base}/admin`);
    await page.locator('input[name="token"]').fill(token);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("button", { name: "Log out" }).waitFor();
    expect(page.url()).toBe(`${base}/admin`);
    await page.locator("#projections tr", { hasText: "balances" }).waitFor();
    expect(await page.locator("#projections").textContent()).toContain("balances");

    // The example's holds page: hold the account.
    await page.goto(`${base}/admin/holds`);
    await page.locator('form[action="/admin/holds"] input[name="account"]').fill("frozen");
    await press(page, "/admin/holds", "/admin/holds", "frozen is on hold");
    await page.locator('form[action="/admin/holds/frozen/release"]').waitFor();
    await page.screenshot({ path: screenshot.replace(/\.png$/, "-holds.png"), fullPage: true });

    const appended = await fetch(`${base}/events`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ account: "frozen", amount: 7 }) });
    expect(appended.status).toBe(201);
    const [position = 0] = (await appended.json<{ appended: number[] }>()).appended;

    // The package's parked page: the projection runs after the append's response, so reload until it has parked the event.
    const parkedPage = "/admin/projections/balances/parked";
    const replay = `${parkedPage}/${position}/replay`;
    await page.goto(`${base}${parkedPage}`);
    for (let attempt = 0; attempt < 20 && (await page.locator(`form[action="${replay}"]`).count()) === 0; attempt++) {
      await (await fetch(`${base}/balances?min_position=${position}`)).body?.cancel(); // waits (up to 2 s) for the projection to pass it
      await page.reload();
    }
    const row = page.locator("#parked tr", { has: page.locator(`form[action="${replay}"]`) });
    expect(await row.count()).toBe(1);
    expect(await row.locator("td").nth(0).textContent()).toBe(String(position));
    expect(await row.locator("td").nth(1).textContent()).toContain("frozen is on hold");
    await mkdir(path.dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot.replace(/\.png$/, "-parked.png"), fullPage: true });

    // Release on the holds page, then replay on the parked page.
    await page.goto(`${base}/admin/holds`);
    await press(page, "/admin/holds/frozen/release", "/admin/holds", "released frozen");
    expect(await page.locator('form[action="/admin/holds/frozen/release"]').count()).toBe(0);

    await page.goto(`${base}${parkedPage}`);
    await press(page, replay, parkedPage, `replayed ${position}`);
    expect(await page.locator(`form[action="${replay}"]`).count()).toBe(0);
    const balance = await fetch(`${base}/balances/frozen`);
    expect(balance.status).toBe(200);
    expect(await balance.json()).toMatchObject({ account: "frozen", balance: 7 });

    // The overview lists the account's history object among the partitions.
    await page.goto(`${base}/admin`);
    await page.locator("#partitions tr", { hasText: "history/frozen" }).waitFor();
    await page.screenshot({ path: screenshot, fullPage: true });
    expect(violations).toEqual([]);
  });
});
