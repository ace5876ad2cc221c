import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { adminHandler, bearerToken, type AdminHandlerOptions } from "../src/admin.js";
import { CheckpointTypeError, D1CheckpointStore, ProjectionRunner } from "../src/index.js";
import { D1RunLog } from "../src/metrics.js";
import { appendEvents, creditStatement, resetLedger, type LedgerEvent } from "./support/ledger.js";

// The admin page's cost column: rows written per 1,000 events over each
// projection's recent runs, read from the run log the runners' metrics write.

const TOKEN = "0123456789abcdef0123456789abcdef";
const ORIGIN = "http://app.test";
const bearer = { authorization: `Bearer ${TOKEN}` };
const db = env.DB;

beforeEach(async () => {
  await resetLedger();
  await db.prepare("DELETE FROM projection_runs").run();
});

function handler(runLog: AdminHandlerOptions["runLog"]): (request: Request) => Promise<Response | undefined> {
  return adminHandler({ store: new D1CheckpointStore(db), auth: bearerToken(TOKEN), ...(runLog === undefined ? {} : { runLog }) });
}

/** `path` as a signed-in browser sees it (the login form's session cookie), or with `headers` (a bearer token: JSON). */
async function page(runLog: AdminHandlerOptions["runLog"], path = "/admin", headers?: Record<string, string>): Promise<Response> {
  const h = handler(runLog);
  const send = async (url: string, init: RequestInit): Promise<Response> => {
    const response = await h(new Request(`${ORIGIN}${url}`, init));
    if (response === undefined) throw new Error(`not handled: ${url}`);
    return response;
  };
  if (headers !== undefined) return send(path, { headers });
  const login = await send("/admin/login", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", origin: ORIGIN }, body: `token=${TOKEN}` });
  const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
  return send(path, { headers: { cookie, accept: "text/html" } });
}

async function runLogged(log: D1RunLog, events: number): Promise<void> {
  const runner = new ProjectionRunner<LedgerEvent>({
    name: "ledger",
    store: new D1CheckpointStore(db),
    batchSize: 10,
    eventsQuery: (after, limit) => db.prepare("SELECT position, account, amount FROM ledger_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
    project: (batch) => batch.map((event) => creditStatement(event)),
    metrics: { record: log.record },
  });
  await appendEvents(events);
  await runner.run();
}

describe("the admin page's rows per 1,000 events", () => {
  it("shows each projection's rows written per 1,000 events over its recent runs, as HTML and JSON", async () => {
    const log = new D1RunLog(db);
    await runLogged(log, 50);
    await runLogged(log, 50);
    const recent = (await log.recent(["ledger"])).get("ledger");
    expect(recent?.events).toBe(100);
    const per1000 = Math.round(recent?.rowsWrittenPer1000Events ?? 0);
    // 5 accounts created, then updated in place, and 2 rows of the package's own per batch of 10: about 1,2xx.
    expect(per1000).toBeGreaterThan(1000);
    const html = await (await page(log)).text();
    expect(html).toContain("rows written / 1,000 events");
    expect(html).toContain(`>${per1000.toLocaleString("en-US")}</span>`);
    const json = await (await page(log, "/admin/api/projections", bearer)).json<{ projections: { name: string; recentRuns?: { runs: number; events: number } }[] }>();
    expect(json.projections.find((row) => row.name === "ledger")?.recentRuns).toMatchObject({ runs: 2, events: 100 });
  });

  it("has no cost column without a run log, and names a failing one instead of failing the page", async () => {
    await runLogged(new D1RunLog(db), 10);
    expect(await (await page(undefined)).text()).not.toContain("rows written / 1,000 events");
    const broken = { recent: () => Promise.reject(new Error("D1 is down")) };
    const response = await page(broken);
    expect(response.status).toBe(200);
    expect(await response.text()).toContain("Rows per 1,000 events are not shown: the run log failed: D1 is down");
  });

  it("refuses a run log without recent", () => {
    expect(() => handler({} as never)).toThrow(CheckpointTypeError);
  });
});
