import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { CheckpointTypeError, D1CheckpointStore, D1OperationError, ProjectionGroup, ProjectionRunner, QueryBudget, type D1Client, type RunMetrics, type RunReport } from "../src/index.js";
import { ANALYTICS_ENGINE_LAYOUT, analyticsEngine, D1RunLog, dollarsFor, jsonLogLine, PRICES } from "../src/metrics.js";
import { countD1, interceptD1 } from "../src/testing.js";
import { appendEvents, creditStatement, resetLedger, type LedgerEvent } from "./support/ledger.js";

// The metrics option of runners and groups, and the ready recorders: one
// JSON log line per run, Analytics Engine data points (through a recording
// wrapper around the real binding, which accepts writes locally but cannot
// be queried), and the run log in D1.

beforeEach(async () => {
  await resetLedger();
  await env.DB.batch([
    env.DB.prepare("DELETE FROM projection_runs"),
    env.DB.prepare("DELETE FROM projection_leases"),
    // The events' times, for oldestUnappliedAgeMs: every event appended a minute ago.
    env.DB.prepare("CREATE VIEW IF NOT EXISTS ledger_times AS SELECT position, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) - 60000 AS recorded_at FROM ledger_events"),
  ]);
});

const eventsQuery = (db: D1Client) => (after: number, limit: number) =>
  db.prepare("SELECT position, account, amount FROM ledger_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit);

const lagOf = { newest: env.DB.prepare("SELECT MAX(position) FROM ledger_events"), eventTimes: { table: "ledger_times", time: "recorded_at" } };

function runner(metrics: RunMetrics | undefined, options: { db?: D1Client; fail?: boolean } = {}): ProjectionRunner<LedgerEvent> {
  const db = options.db ?? env.DB;
  return new ProjectionRunner<LedgerEvent>({
    name: "ledger",
    store: new D1CheckpointStore(db),
    batchSize: 10,
    eventsQuery: eventsQuery(db),
    metrics,
    project: (events) => {
      if (options.fail === true) throw new Error("the read model refused it");
      return events.map((event) => creditStatement(event, db));
    },
  });
}

function group(metrics: RunMetrics): ProjectionGroup<LedgerEvent> {
  return new ProjectionGroup<LedgerEvent>({
    name: "ledger-group",
    store: new D1CheckpointStore(env.DB),
    batchSize: 10,
    eventsQuery: eventsQuery(env.DB),
    metrics,
    projections: ["a", "b"].map((name) => ({ name, project: (events: readonly LedgerEvent[]) => events.map((event) => creditStatement(event)) })),
  });
}

/** A recording wrapper around the real Analytics Engine binding. */
function recordingDataset(): { dataset: AnalyticsEngineDataset; points: AnalyticsEngineDataPoint[] } {
  const points: AnalyticsEngineDataPoint[] = [];
  return {
    points,
    dataset: {
      writeDataPoint(point?: AnalyticsEngineDataPoint) {
        if (point !== undefined) points.push(point);
        env.PROJECTION_METRICS.writeDataPoint(point);
      },
    },
  };
}

describe("the metrics option", () => {
  it("gives every recorder one report per run: the summary's counts and rows, and lag when asked", async () => {
    await appendEvents(25);
    const reports: RunReport[] = [];
    const summary = await runner({ record: [(report) => void reports.push(report)], ...lagOf }).run({ maxBatches: 2 });
    expect(reports).toHaveLength(1);
    const [report] = reports;
    expect(report).toMatchObject({
      kind: "runner",
      name: "ledger",
      ended: "maxBatches",
      caughtUp: false,
      events: 20,
      batches: 2,
      queries: summary.queries,
      rowsRead: summary.rowsRead,
      rowsWritten: summary.rowsWritten,
      ownRowsWritten: summary.ownRowsWritten,
      error: undefined,
    });
    expect(report?.projections).toEqual([
      expect.objectContaining({ name: "ledger", from: 0, to: 20, events: 20, lag: 5, error: undefined }),
    ]);
    expect(report?.projections[0]?.oldestUnappliedAgeMs).toBeGreaterThanOrEqual(60_000);
    // The lag read is one more round trip (the status and the newest query: 2 queries), on the caller's budget, after the run's own.
    const budget = new QueryBudget();
    const again = await runner({ record: () => undefined, ...lagOf }).run({ budget });
    expect(budget.spent).toBe(again.queries + 2);
    expect(again.caughtUp).toBe(true);
  });

  it("without newest or eventTimes, lag is unknown and nothing more is sent", async () => {
    await appendEvents(5);
    const counted = countD1(env.DB);
    const reports: RunReport[] = [];
    const summary = await runner({ record: (report) => void reports.push(report) }, { db: counted.db }).run();
    expect(counted.calls.reduce((sum, call) => sum + call.sql.length, 0)).toBe(summary.queries);
    expect(reports[0]?.projections[0]).toMatchObject({ lag: undefined, oldestUnappliedAgeMs: undefined });
  });

  it("a run's own metrics replace the runner's for that run", async () => {
    await appendEvents(5);
    const runnerReports: RunReport[] = [];
    const runReports: RunReport[] = [];
    await runner({ record: (report) => void runnerReports.push(report) }).run({ metrics: { record: (report) => void runReports.push(report) } });
    expect([runnerReports.length, runReports.length]).toEqual([0, 1]);
  });

  it("a failed run is reported as failed, and still rejects with its own error", async () => {
    await appendEvents(5);
    const reports: RunReport[] = [];
    await expect(runner({ record: (report) => void reports.push(report) }, { fail: true }).run()).rejects.toThrow(/the read model refused it/);
    expect(reports).toEqual([expect.objectContaining({ ended: "failed", error: expect.stringMatching(/the read model refused it/) as string, projections: [] })]);
    // What it sent before it failed (its load, with the first events), as its budget saw it.
    expect(reports[0]?.queries).toBeGreaterThan(0);
    expect(reports[0]?.rowsRead).toBeGreaterThan(0);
  });

  it("bad run options are refused before the run, and reported by no one", async () => {
    const reports: RunReport[] = [];
    await expect(runner({ record: (report) => void reports.push(report) }).run({ maxBatches: 0 })).rejects.toThrow(/options\.maxBatches/);
    await expect(group({ record: (report) => void reports.push(report) }).run({ budget: "lots" } as never)).rejects.toThrow(/options\.budget/);
    expect(reports).toEqual([]);
  });

  it("a recorder that throws changes nothing of the run's result", async () => {
    await appendEvents(5);
    const after: RunReport[] = [];
    const summary = await runner({
      record: [
        () => {
          throw new Error("the metrics sink is down");
        },
        (report) => void after.push(report),
      ],
    }).run();
    expect(summary).toMatchObject({ events: 5, caughtUp: true });
    expect(after).toHaveLength(1); // the next recorder still got it
  });

  it("a group's report has one entry per projection, each with its own rows and lag", async () => {
    await appendEvents(30);
    const reports: RunReport[] = [];
    const summary = await group({ record: (report) => void reports.push(report), ...lagOf }).run();
    const [report] = reports;
    expect(report).toMatchObject({ kind: "group", name: "ledger-group", ended: "caughtUp", events: 60, rowsWritten: summary.rowsWritten });
    expect(report?.projections.map((part) => [part.name, part.events, part.lag, part.rowsWritten])).toEqual(
      summary.projections.map((part) => [part.name, 30, 0, part.rowsWritten]),
    );
  });

  it("refuses bad metrics before any query", () => {
    const counted = countD1(env.DB);
    const bad: unknown[] = [
      { record: "log" },
      { record: [] },
      { record: () => undefined, newest: -1 },
      { record: () => undefined, newest: "SELECT 1" },
      { record: () => undefined, newest: {} },
      { record: () => undefined, eventTimes: { table: "events; DROP TABLE x", time: "t" } },
      { record: () => undefined, recrod: 1 },
    ];
    for (const metrics of bad) expect(() => runner(metrics as RunMetrics, { db: counted.db })).toThrow(/options\.metrics/);
    expect(counted.calls).toEqual([]);
  });
});

describe("jsonLogLine", () => {
  it("refuses bad options", () => {
    expect(() => jsonLogLine({ log: "console" } as never)).toThrow(CheckpointTypeError);
    expect(() => jsonLogLine({ mesage: "x" } as never)).toThrow(/unknown key/);
  });

  it("writes one line of JSON per run, at error level when the run failed", async () => {
    await appendEvents(5);
    const lines: { line: string; failed: boolean }[] = [];
    const log = jsonLogLine({ log: (line, failed) => void lines.push({ line, failed }) });
    const summary = await runner({ record: log }).run();
    await expect(runner({ record: log }, { fail: true }).run({})).resolves.toMatchObject({ events: 0 }); // caught up: nothing to project
    await appendEvents(1);
    await expect(runner({ record: log }, { fail: true }).run()).rejects.toThrow();
    expect(lines.map((entry) => entry.failed)).toEqual([false, false, true]);
    expect(lines.every((entry) => !entry.line.includes("\n"))).toBe(true);
    const first = JSON.parse(lines[0]?.line ?? "") as Record<string, unknown>;
    expect(first).toMatchObject({ message: "projection run", level: "info", kind: "runner", name: "ledger", events: 5, rowsWritten: summary.rowsWritten });
    expect(JSON.parse(lines[2]?.line ?? "")).toMatchObject({ level: "error", ended: "failed" });
  });
});

describe("analyticsEngine", () => {
  it("writes one data point per runner run, in the documented layout", async () => {
    await appendEvents(25);
    const { dataset, points } = recordingDataset();
    const summary = await runner({ record: analyticsEngine(dataset), ...lagOf }).run({ maxBatches: 1 });
    expect(points).toEqual([
      {
        indexes: ["ledger"],
        blobs: ["runner", "ledger", "maxBatches", "", ""],
        doubles: [10, summary.queries, summary.rowsRead, summary.rowsWritten, summary.ownRowsRead, summary.ownRowsWritten, 15, expect.any(Number), 1, expect.any(Number)],
      },
    ]);
    expect(Object.keys(ANALYTICS_ENGINE_LAYOUT).filter((key) => key.startsWith("double"))).toHaveLength(points[0]?.doubles?.length ?? 0);
    expect(Object.keys(ANALYTICS_ENGINE_LAYOUT).filter((key) => key.startsWith("blob"))).toHaveLength(points[0]?.blobs?.length ?? 0);
  });

  it("writes a group's point and one per projection; unknown lag is -1", async () => {
    await appendEvents(10);
    const { dataset, points } = recordingDataset();
    const summary = await group({ record: analyticsEngine(dataset) }).run();
    expect(points.map((point) => point.blobs?.slice(0, 4))).toEqual([
      ["group", "ledger-group", "caughtUp", ""],
      ["member", "a", "caughtUp", "ledger-group"],
      ["member", "b", "caughtUp", "ledger-group"],
    ]);
    expect(points.map((point) => point.doubles?.[1])).toEqual([summary.queries, 0, 0]); // the group's queries, once
    expect(points.slice(1).map((point) => point.doubles?.[6])).toEqual([-1, -1]);
    const memberRows = points.slice(1).reduce((sum, point) => sum + Number(point.doubles?.[3]), 0);
    expect(memberRows).toBe(summary.rowsWritten);
  });

  it("keeps the index within Analytics Engine's 96 bytes, and the whole name in blob2", async () => {
    await appendEvents(3);
    const { dataset, points } = recordingDataset();
    const name = `ledger-${"é".repeat(200)}`;
    await new ProjectionRunner<LedgerEvent>({
      name,
      store: new D1CheckpointStore(env.DB),
      eventsQuery: eventsQuery(env.DB),
      project: (events) => events.map((event) => creditStatement(event)),
      metrics: { record: analyticsEngine(dataset) },
    }).run();
    const [point] = points;
    const index = point?.indexes?.[0];
    if (typeof index !== "string") throw new Error("no index");
    expect(new TextEncoder().encode(index).length).toBeLessThanOrEqual(96);
    expect(name.startsWith(index) && index.length > 40).toBe(true);
    expect(point?.blobs?.[1]).toBe(name);
  });

  it("refuses what is not a dataset", () => {
    expect(() => analyticsEngine({} as AnalyticsEngineDataset)).toThrow(CheckpointTypeError);
  });
});

describe("D1RunLog", () => {
  it("records nothing for a run that committed no event: an idle poll costs no query", async () => {
    const log = new D1RunLog(env.DB);
    const budget = new QueryBudget();
    const summary = await runner({ record: log.record }).run({ budget });
    expect([summary.events, budget.spent]).toEqual([0, summary.queries]);
    expect((await log.recent(["ledger"])).size).toBe(0);
  });

  it("keeps each projection's newest runs in one row, in one query per run on the run's budget", async () => {
    const log = new D1RunLog(env.DB, { keep: 3 });
    const ledger = runner({ record: log.record });
    for (let i = 0; i < 5; i++) {
      await appendEvents(5 + i); // runs of 5, 6, 7, 8 and 9 events
      const budget = new QueryBudget();
      const summary = await ledger.run({ budget });
      expect(budget.spent).toBe(summary.queries + 1);
    }
    const recent = (await log.recent(["ledger", "nobody"])).get("ledger");
    expect(recent).toMatchObject({ runs: 3, events: 7 + 8 + 9 });
    expect(recent?.rowsWrittenPer1000Events).toBe(((recent?.rowsWritten ?? 0) / 24) * 1000);
    // The newest three, oldest first.
    const { results } = await env.DB.prepare("SELECT name, value ->> '$[1]' AS events FROM projection_runs, json_each(projection_runs.runs) ORDER BY key").all();
    expect(results).toEqual([7, 8, 9].map((events) => ({ name: "ledger", events })));
    expect((await log.recent(["nobody"])).size).toBe(0);
  });

  it("records a group's projections in one query, 1 row written each", async () => {
    const log = new D1RunLog(env.DB);
    await appendEvents(10);
    await group({ record: log.record }).run();
    const budget = new QueryBudget();
    await log.record(
      { kind: "group", name: "g", ended: "caughtUp", caughtUp: true, events: 10, batches: 0, queries: 0, durationMs: 0, rowsRead: 0, rowsWritten: 0, ownRowsRead: 0, ownRowsWritten: 0, error: undefined,
        projections: ["a", "b"].map((name) => ({ name, ended: "caughtUp", from: 10, to: 15, events: 5, skipped: 0, parked: 0, rowsRead: 0, rowsWritten: 0, ownRowsRead: 0, ownRowsWritten: 0, lag: 0, oldestUnappliedAgeMs: 0, error: undefined })) },
      { budget },
    );
    expect(budget.spent).toBe(1);
    expect(budget.rows.rowsWritten).toBe(2);
    const recent = await log.recent(["a", "b"]);
    expect([recent.get("a")?.runs, recent.get("b")?.events]).toEqual([2, 15]);
  });

  it("skips runs stored by hand that are not runs, and names a failing read with D1's error as cause", async () => {
    await env.DB.prepare("INSERT INTO projection_runs (name, runs) VALUES ('odd', '[[1e300, 1, 1, 1, 1], \"junk\", [1000, 10, 5, 20, 2]]')").run();
    expect((await new D1RunLog(env.DB).recent(["odd"])).get("odd")).toMatchObject({ runs: 1, events: 10, rowsWritten: 20, rowsWrittenPer1000Events: 2000 });
    const broken = new D1RunLog(interceptD1(env.DB, () => Promise.reject(new Error("Network connection lost"))));
    const error = await broken.recent(["odd"]).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(D1OperationError);
    expect((error as D1OperationError).cause).toBeInstanceOf(Error);
  });

  it("refuses bad options", () => {
    expect(() => new D1RunLog(env.DB, { keep: 0 })).toThrow();
    expect(() => new D1RunLog({} as never)).toThrow(CheckpointTypeError);
    expect(() => new D1RunLog(env.DB, { kept: 5 } as never)).toThrow(/unknown key/);
  });
});

describe("PRICES", () => {
  it("turns rows into dollars at the published prices", () => {
    expect(PRICES.readOn).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(dollarsFor({ rowsWritten: 1_000_000, rowsRead: 1_000_000 })).toBeCloseTo(1.001, 6);
  });
});
