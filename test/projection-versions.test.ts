import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { injectFaults } from "../src/testing/faults.js";
import { countD1, interceptD1 } from "../src/testing/intercept.js";
import {
  CheckpointRangeError,
  CheckpointTypeError,
  D1CheckpointStore,
  isCheckpointConflict,
  ProjectionGroup,
  ProjectionRunner,
  ProjectionVersionError,
  type RunSummary,
} from "../src/index.js";

// Rebuilding a projection beside the live one and switching it live in one
// batch (decision 0020), on local D1: the live read model stays whole
// throughout, the switch is atomic against live runs and appends, and a
// version switched away never writes again.

interface Event {
  readonly position: number;
  readonly account: string;
  readonly amount: number;
}

const db = env.DB;
const NAME = "totals";

async function resetAll(): Promise<void> {
  const { results } = await db.prepare("SELECT type, name FROM sqlite_master WHERE name GLOB 'v_*' AND type IN ('table', 'view')").all<{ type: string; name: string }>();
  await db.batch([
    ...results.map(({ type, name }) => db.prepare(`DROP ${type === "view" ? "VIEW" : "TABLE"} ${name}`)),
    db.prepare("CREATE TABLE IF NOT EXISTS v_events (position INTEGER PRIMARY KEY, account TEXT NOT NULL, amount INTEGER NOT NULL, at INTEGER NOT NULL)"),
    db.prepare("DELETE FROM v_events"),
    // Version 1's table is the read name itself, as before any rebuild.
    db.prepare("CREATE TABLE v_totals (account TEXT PRIMARY KEY, total INTEGER NOT NULL, n INTEGER NOT NULL)"),
    db.prepare("DELETE FROM checkpoints"),
    db.prepare("DELETE FROM projection_versions"),
    db.prepare("DELETE FROM projection_leases"),
  ]);
}

beforeEach(resetAll);

/** Appends `count` events; their amounts differ by position, their accounts cycle over 4. */
async function append(count: number): Promise<void> {
  const newest = (await db.prepare("SELECT COALESCE(MAX(position), 0) AS p FROM v_events").first<{ p: number }>())?.p ?? 0;
  const rows = Array.from({ length: count }, (_, i) => newest + 1 + i);
  for (let i = 0; i < rows.length; i += 30) {
    await db.batch(
      rows.slice(i, i + 30).map((p) =>
        db.prepare("INSERT INTO v_events (position, account, amount, at) VALUES (?1, ?2, ?3, ?4)").bind(p, `a${p % 4}`, (p % 9) + 1, Date.now() - 60_000),
      ),
    );
  }
}

function table(version: number): string {
  return version === 1 ? "v_totals" : `v_totals_v${version}`;
}

const CREATE = (name: string): string => `CREATE TABLE IF NOT EXISTS ${name} (account TEXT PRIMARY KEY, total INTEGER NOT NULL, n INTEGER NOT NULL)`;

/** Version 1 sums amounts; version 2 and later (the "fix") sum them doubled. `n` counts the events applied per account. */
function project(version: number, into: string): (events: readonly Event[]) => D1PreparedStatement[] {
  const factor = version === 1 ? 1 : 2;
  return (events) =>
    events.map((event) =>
      db
        .prepare(`INSERT INTO ${into} (account, total, n) VALUES (?1, ?2, 1) ON CONFLICT (account) DO UPDATE SET total = total + excluded.total, n = n + 1`)
        .bind(event.account, event.amount * factor),
    );
}

function runner(version: number, store = new D1CheckpointStore(db), into = table(version), batchSize = 40): ProjectionRunner<Event> {
  return new ProjectionRunner<Event>({
    name: NAME,
    version,
    store,
    batchSize,
    eventsQuery: (after, limit) => db.prepare("SELECT position, account, amount FROM v_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
    project: project(version, into),
  });
}

/** What version `version` makes of the events up to `position` (all by default), computed in SQL, as readers would see it. */
async function expected(version: number, position = Number.MAX_SAFE_INTEGER): Promise<{ account: string; total: number; n: number }[]> {
  const factor = version === 1 ? 1 : 2;
  const { results } = await db
    .prepare("SELECT account, SUM(amount) * ?2 AS total, COUNT(*) AS n FROM v_events WHERE position <= ?1 GROUP BY account ORDER BY account")
    .bind(position, factor)
    .all<{ account: string; total: number; n: number }>();
  return results;
}

async function rows(from: string): Promise<{ account: string; total: number; n: number }[]> {
  return (await db.prepare(`SELECT account, total, n FROM ${from} ORDER BY account`).all<{ account: string; total: number; n: number }>()).results;
}

/** One consistent read of the live read model and the live checkpoint, as a reader's batch sees them. */
async function liveSnapshot(): Promise<{ rows: { account: string; total: number; n: number }[]; position: number; version: number }> {
  const [model, checkpoint, version] = await db.batch<Record<string, unknown>>([
    db.prepare("SELECT account, total, n FROM v_totals ORDER BY account"),
    db.prepare("SELECT position FROM checkpoints WHERE name = ?1").bind(NAME),
    db.prepare("SELECT version FROM projection_versions WHERE name = ?1 AND state = 'live'").bind(NAME),
  ]);
  return {
    rows: (model?.results ?? []) as { account: string; total: number; n: number }[],
    position: (checkpoint?.results[0]?.position as number | undefined) ?? 0,
    version: (version?.results[0]?.version as number | undefined) ?? 1,
  };
}

/** Appends `events`, runs version 1, starts version 2 beside it (table v_totals_v2) and builds it up to the live version. */
async function builtBeside(store: D1CheckpointStore, events: number): Promise<void> {
  await append(events);
  await runner(1, store).run();
  await store.startRebuild(NAME, 2, { tables: { v_totals: "v_totals_v2" }, create: [db.prepare(CREATE("v_totals_v2"))] });
  await runner(2, store).run();
}

async function liveVersion(store: D1CheckpointStore): Promise<number | undefined> {
  return (await store.versions(NAME)).find((version) => version.state === "live")?.version;
}

describe("rebuilding a projection beside the live one", () => {
  it("keeps the live read model whole while the rebuild runs, then switches in one batch", async () => {
    const store = new D1CheckpointStore(db);
    await append(200);
    await runner(1, store).run();

    await store.startRebuild(NAME, 2, { tables: { v_totals: "v_totals_v2" }, create: [db.prepare(CREATE("v_totals_v2"))] });
    expect((await store.versions(NAME)).map(({ version, state, checkpoint, tables }) => ({ version, state, checkpoint, tables }))).toEqual([
      { version: 1, state: "live", checkpoint: NAME, tables: { v_totals: "v_totals" } },
      { version: 2, state: "building", checkpoint: "totals@2", tables: { v_totals: "v_totals_v2" } },
    ]);

    // The rebuild goes a batch at a time (as cron invocations would), while events keep coming and the live version keeps up.
    const snapshots = [];
    let rebuild: RunSummary;
    do {
      rebuild = await runner(2, store).run({ maxBatches: 1 });
      expect(rebuild.name).toBe("totals@2");
      await append(7);
      const live = await runner(1, store).run();
      expect(live.name).toBe(NAME);
      snapshots.push(await liveSnapshot());
    } while (!rebuild.caughtUp);
    expect(snapshots.length).toBeGreaterThan(4);
    for (const snapshot of snapshots) expect(snapshot.rows).toEqual(await expected(1, snapshot.position));

    // Caught up with the live version (the live one applied the last appends too), then switched.
    await runner(2, store).run();
    await runner(1, store).run();
    await store.switchVersion(NAME, 2);
    const after = await liveSnapshot();
    expect(after.rows).toEqual(await expected(2));
    expect(after.position).toBe(207 + 7 * (snapshots.length - 1));

    // The read model equals version 2 projected from scratch, into a table of its own.
    await db.prepare(CREATE("v_scratch")).run();
    const scratch = new ProjectionRunner<Event>({
      name: "scratch",
      store,
      eventsQuery: (after, limit) => db.prepare("SELECT position, account, amount FROM v_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
      project: project(2, "v_scratch"),
    });
    await scratch.run();
    expect(await rows("v_totals")).toEqual(await rows("v_scratch"));

    // Version 2 now runs as the live version; version 1 does nothing, its table and checkpoint kept for a rollback.
    await append(5);
    await expect(runner(1, store).run()).resolves.toMatchObject({ ended: "inactive", events: 0, queries: 1 });
    await expect(runner(2, store).run()).resolves.toMatchObject({ name: NAME, events: 5, ended: "caughtUp" });
    expect(await rows("v_totals")).toEqual(await expected(2));
    const kept = await store.load("totals@1");
    expect(kept.found).toBe(true);
    expect(await rows("v_totals_v1")).toEqual(await expected(1, kept.position));
    expect((await store.versions(NAME)).map(({ version, state, tables }) => ({ version, state, tables }))).toEqual([
      { version: 1, state: "retired", tables: { v_totals: "v_totals_v1" } },
      { version: 2, state: "live", tables: { v_totals: "v_totals_v2" } },
    ]);
    await expect(store.load("totals@2")).resolves.toEqual({ position: 0, found: false });
  });

  it("switches atomically against live runs and appends: no event lost, none applied twice, the old version never writes again", async () => {
    const store = new D1CheckpointStore(db);
    await builtBeside(store, 120);

    let switched = false;
    const switching = async (): Promise<void> => {
      // The switch refuses while a live run has committed past the rebuild; the rebuild catches up and it tries again.
      for (let attempt = 0; attempt < 50 && !switched; attempt++) {
        await runner(2, store, undefined, 5).run({ maxBatches: 2 });
        try {
          await store.switchVersion(NAME, 2);
          switched = true;
        } catch (error) {
          expect(error).toBeInstanceOf(ProjectionVersionError);
        }
      }
    };
    const appending = async (): Promise<void> => {
      for (let i = 0; i < 12; i++) await append(3);
    };
    const running = async (version: number): Promise<RunSummary[]> => {
      const summaries = [];
      for (let i = 0; i < 12; i++) summaries.push(await runner(version, store, undefined, 5).run({ maxBatches: 2 }));
      return summaries;
    };
    const snapshots: Awaited<ReturnType<typeof liveSnapshot>>[] = [];
    const reading = async (): Promise<void> => {
      for (let i = 0; i < 40; i++) snapshots.push(await liveSnapshot());
    };
    const [, , ones, twos] = await Promise.all([switching(), appending(), running(1), running(2), running(2), reading()]);
    expect(switched).toBe(true);
    // Every read saw one version's whole read model at the live checkpoint: never empty, never partial, never a mix.
    expect(new Set(snapshots.map((snapshot) => snapshot.version))).toEqual(new Set([1, 2]));
    for (const snapshot of snapshots) expect(snapshot.rows).toEqual(await expected(snapshot.version, snapshot.position));
    // Some version-1 runs were under way when it was switched away, or started after: they ended without writing.
    expect(ones.some((summary) => summary.ended === "inactive" || summary.ended === "switched")).toBe(true);
    expect(twos.length).toBe(12);

    await runner(2, store).run();
    expect(await liveVersion(store)).toBe(2);
    expect(await rows("v_totals")).toEqual(await expected(2));
    const kept = await store.load("totals@1");
    expect(await rows("v_totals_v1")).toEqual(await expected(1, kept.position));
  });

  it("fences a commit of a version that was switched away: nothing is applied", async () => {
    const store = new D1CheckpointStore(db);
    await builtBeside(store, 10);
    await store.switchVersion(NAME, 2, { retire: "drop" });
    // A version-1 commit that loaded before the switch, at the same position as the switched checkpoint.
    const late = db.prepare("INSERT INTO v_totals_v2 (account, total, n) VALUES ('late', 1, 1)");
    const error = await store.commit(NAME, 11, [late], { expected: 10, fence: { name: NAME, version: 1, state: "live" } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProjectionVersionError);
    expect((error as ProjectionVersionError).message).toMatch(/version 1 of "totals" was live and has no record now/);
    await expect(store.load(NAME)).resolves.toEqual({ position: 10, found: true });
    expect((await rows("v_totals")).some((row) => row.account === "late")).toBe(false);
    // Dropped: the old table and the old version's record are gone.
    expect(await db.prepare("SELECT name FROM sqlite_master WHERE name = 'v_totals_v1'").first()).toBeNull();
    expect((await store.versions(NAME)).map((v) => v.version)).toEqual([2]);
    // A replay is fenced too: a parked event of the live name is not taken by a version that was switched away.
    await db.prepare("INSERT INTO parked_events (name, position, error, parked_at) VALUES (?1, 4, 'held', 0)").bind(NAME).run();
    const replay = await store
      .replayParked(NAME, 4, [db.prepare("INSERT INTO v_totals_v2 (account, total, n) VALUES ('replayed', 1, 1)")], { fence: { name: NAME, version: 1, state: "live" } })
      .catch((e: unknown) => e);
    expect(replay).toBeInstanceOf(ProjectionVersionError);
    expect(await db.prepare("SELECT COUNT(*) AS n FROM parked_events WHERE name = ?1 AND position = 4").bind(NAME).first("n")).toBe(1);
    expect((await rows("v_totals")).some((row) => row.account === "replayed")).toBe(false);
    await expect(
      store.replayParked(NAME, 4, [db.prepare("INSERT INTO v_totals_v2 (account, total, n) VALUES ('replayed', 1, 1)")], { fence: { name: NAME, version: 2, state: "live" } }),
    ).resolves.toBe(true);
    // An unversioned runner is not fenced, but its writes to the read name, now a view, fail: it stops, nothing applied.
    const unversioned = new ProjectionRunner<Event>({
      name: NAME,
      store,
      eventsQuery: (after, limit) => db.prepare("SELECT position, account, amount FROM v_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
      project: project(1, "v_totals"),
    });
    await append(1);
    await expect(unversioned.run()).rejects.toThrow(/cannot modify v_totals because it is a view/);
    await expect(store.load(NAME)).resolves.toEqual({ position: 10, found: true });
    // The live version's own fence holds.
    await store.commit(NAME, 11, [db.prepare("INSERT INTO v_totals_v2 (account, total, n) VALUES ('ok', 1, 1)")], { expected: 10, fence: { name: NAME, version: 2, state: "live" } });
    expect((await rows("v_totals")).some((row) => row.account === "ok")).toBe(true);
    expect((await rows("v_totals")).some((row) => row.account === "replayed")).toBe(true);
  });

  it("drops an abandoned rebuild cleanly, and can start it again from scratch", async () => {
    const store = new D1CheckpointStore(db);
    await append(60);
    await runner(1, store).run();
    await store.startRebuild(NAME, 2, { tables: { v_totals: "v_totals_v2" }, create: [db.prepare(CREATE("v_totals_v2"))] });
    await runner(2, store, undefined, 10).run({ maxBatches: 2 });
    await db.prepare("INSERT INTO parked_events (name, position, error, parked_at) VALUES ('totals@2', 3, 'x', 0)").run();

    await store.dropVersion(NAME, 2);
    expect(await db.prepare("SELECT name FROM sqlite_master WHERE name = 'v_totals_v2'").first()).toBeNull();
    await expect(store.load("totals@2")).resolves.toEqual({ position: 0, found: false });
    expect(await db.prepare("SELECT COUNT(*) AS n FROM parked_events WHERE name = 'totals@2'").first("n")).toBe(0);
    expect((await store.versions(NAME)).map(({ version, state }) => ({ version, state }))).toEqual([{ version: 1, state: "live" }]);
    await expect(runner(2, store).run()).resolves.toMatchObject({ ended: "inactive", events: 0 });
    // The live version never noticed.
    expect(await rows("v_totals")).toEqual(await expected(1));

    await store.startRebuild(NAME, 2, { tables: { v_totals: "v_totals_v2" }, create: [db.prepare(CREATE("v_totals_v2"))] });
    await expect(runner(2, store).run()).resolves.toMatchObject({ name: "totals@2", from: 0, to: 60, events: 60 });
  });

  it("rebuilds again over a switched version (a view), and rolls back to a kept version", async () => {
    const store = new D1CheckpointStore(db);
    await builtBeside(store, 30);
    await store.switchVersion(NAME, 2, { retire: "drop" });

    await store.startRebuild(NAME, 3, { tables: { v_totals: "v_totals_v3" }, create: [db.prepare(CREATE("v_totals_v3"))] });
    await runner(3, store).run();
    await append(4);
    await runner(2, store).run();
    await runner(3, store).run();
    await store.switchVersion(NAME, 3);
    expect(await rows("v_totals")).toEqual(await rows("v_totals_v3"));
    expect(await rows("v_totals")).toEqual(await expected(3));

    // Roll back to version 2: it was kept with its checkpoint; rebuilt from there, then switched to again.
    await append(3);
    await runner(3, store).run();
    await store.startRebuild(NAME, 2, { tables: { v_totals: "v_totals_v2" } });
    await expect(runner(2, store).run()).resolves.toMatchObject({ name: "totals@2", from: 34, to: 37, events: 3 });
    await store.switchVersion(NAME, 2);
    expect(await rows("v_totals")).toEqual(await rows("v_totals_v2"));
    expect(await rows("v_totals")).toEqual(await expected(2));
    expect((await store.versions(NAME)).map(({ version, state }) => ({ version, state }))).toEqual([
      { version: 2, state: "live" },
      { version: 3, state: "retired" },
    ]);
  });

  it("reports a rebuild's progress, its estimated time to catch up, and the age of the oldest event not yet applied", async () => {
    const store = new D1CheckpointStore(db);
    await append(100);
    await runner(1, store).run();
    await expect(store.status(NAME)).resolves.toMatchObject({ version: undefined, rebuild: undefined, oldestUnappliedAgeMs: undefined });
    await store.startRebuild(NAME, 2, { tables: { v_totals: "v_totals_v2" }, create: [db.prepare(CREATE("v_totals_v2"))] });
    await runner(2, store, undefined, 10).run({ maxBatches: 3 });
    // The rebuild "started" 10 s ago by the database's clock, so its rate is about 30 positions in 10 s.
    await db.prepare(`UPDATE projection_versions SET started_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) - 10000 WHERE version = 2`).run();
    const newest = db.prepare("SELECT MAX(position) FROM v_events");
    const eventTimes = { table: "v_events", time: "at" };
    const building = await store.status("totals@2", { newest, eventTimes });
    expect(building).toMatchObject({ name: "totals@2", position: 30, lag: 70, version: 2 });
    const { rebuild } = building;
    expect(rebuild?.of).toBe(NAME);
    expect(rebuild?.version).toBe(2);
    expect(rebuild?.eventsPerSecond).toBeGreaterThan(30 / 11);
    expect(rebuild?.eventsPerSecond).toBeLessThanOrEqual(3);
    expect(rebuild?.etaMs).toBe(Math.ceil((70 * 1000) / (rebuild?.eventsPerSecond ?? 1)));
    expect(building.oldestUnappliedAgeMs).toBeGreaterThanOrEqual(59_000);
    expect(building.oldestUnappliedAgeMs).toBeLessThan(600_000);

    // statuses() shows the same, the live version's number, and 0 for a checkpoint with nothing left to apply.
    const listed = [];
    for await (const status of store.statuses({ newest, eventTimes, prefix: "totals" })) listed.push(status);
    expect(listed.map(({ name, version, lag, oldestUnappliedAgeMs, rebuild: r }) => ({ name, version, lag, caughtUp: oldestUnappliedAgeMs === 0, building: r !== undefined }))).toEqual([
      { name: NAME, version: 1, lag: 0, caughtUp: true, building: false },
      { name: "totals@2", version: 2, lag: 70, caughtUp: false, building: true },
    ]);
    // A time column of date texts works too (here a view over the log).
    await db.prepare("CREATE VIEW v_event_texts AS SELECT position, strftime('%Y-%m-%dT%H:%M:%fZ', at / 1000.0, 'unixepoch') AS at FROM v_events").run();
    const texts = await store.status("totals@2", { eventTimes: { table: "v_event_texts", time: "at" } });
    expect(texts.oldestUnappliedAgeMs).toBeGreaterThanOrEqual(59_000);
    expect(texts.rebuild?.etaMs).toBeUndefined(); // no newest, no estimate
    // An event whose time is NULL is not "nothing left": the age is unknown.
    await db.prepare("CREATE VIEW v_event_nulls AS SELECT position, NULL AS at FROM v_events").run();
    await expect(store.status("totals@2", { eventTimes: { table: "v_event_nulls", time: "at" } })).resolves.toMatchObject({ oldestUnappliedAgeMs: undefined });

    await runner(2, store).run();
    await expect(store.status("totals@2", { newest })).resolves.toMatchObject({ lag: 0, rebuild: { etaMs: 0 } });
  });

  it("refuses calls the version records do not allow, with a ProjectionVersionError and nothing written", async () => {
    const store = new D1CheckpointStore(db);
    await append(20);
    await runner(1, store).run();
    await expect(store.switchVersion(NAME, 2)).rejects.toThrow(/version 2 is not being rebuilt \(no such version\)/);
    await expect(store.startRebuild(NAME, 1, { tables: { v_totals: "v_totals_v9" } })).rejects.toThrow(/version 1 is the live version/);
    await expect(store.dropVersion(NAME, 1)).rejects.toThrow(/has no record/);
    await store.startRebuild(NAME, 2, { tables: { v_totals: "v_totals_v2" }, create: [db.prepare(CREATE("v_totals_v2"))] });
    await expect(store.startRebuild(NAME, 3, { tables: { v_totals: "v_totals_v3" } })).rejects.toThrow(/version 2 is being rebuilt already/);
    await expect(store.dropVersion(NAME, 1)).rejects.toThrow(/is the live version/);
    // Behind the live checkpoint: the switch's guard refuses in the batch.
    await runner(2, store, undefined, 5).run({ maxBatches: 1 });
    const behind = await store.switchVersion(NAME, 2).catch((e: unknown) => e);
    expect(behind).toBeInstanceOf(ProjectionVersionError);
    expect((behind as ProjectionVersionError).message).toMatch(/behind the live checkpoint/);
    expect((await store.versions(NAME)).map((v) => v.state)).toEqual(["live", "building"]);
    expect(await db.prepare("SELECT type FROM sqlite_master WHERE name = 'v_totals'").first("type")).toBe("table");
    // A live table that does not exist is refused (another projection without one).
    await expect(store.startRebuild("other", 2, { tables: { o: "o_v2" }, liveTables: { o: "o_v1" } })).rejects.toThrow(/the live version's table "o_v1" \(for o\) does not exist/);
    await store.dropVersion(NAME, 2);
    await expect(store.startRebuild(NAME, 3, { tables: { v_totals: "V_TOTALS" } })).rejects.toThrow(CheckpointRangeError);
    expect((await store.versions(NAME)).map((v) => v.state)).toEqual(["live"]);
  });

  it("runs the live version and its rebuild in one group through the switch, resuming across budgeted invocations", async () => {
    const store = new D1CheckpointStore(db);
    await append(90);
    await runner(1, store).run();
    await store.startRebuild(NAME, 2, { tables: { v_totals: "v_totals_v2" }, create: [db.prepare(CREATE("v_totals_v2"))] });
    const group = new ProjectionGroup<Event>({
      name: "totals-group",
      store,
      batchSize: 25,
      eventsQuery: (after, limit) => db.prepare("SELECT position, account, amount FROM v_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit),
      projections: [
        { name: NAME, version: 1, project: project(1, "v_totals") },
        { name: NAME, version: 2, project: project(2, "v_totals_v2") },
      ],
    });
    await append(10);
    // Cron invocations, each within a budget of 60 queries: the rebuild resumes where the last one stopped.
    const invocations = [];
    for (let i = 0; i < 20; i++) {
      const summary = await group.run({ budget: 60 });
      invocations.push(summary);
      expect(summary.queries).toBeLessThanOrEqual(60);
      if (summary.caughtUp) break;
    }
    expect(invocations.length).toBeGreaterThan(1);
    expect(invocations.at(-1)?.projections.map(({ name, to, ended }) => ({ name, to, ended }))).toEqual([
      { name: NAME, to: 100, ended: "caughtUp" },
      { name: "totals@2", to: 100, ended: "caughtUp" },
    ]);
    expect(invocations.slice(0, -1).every((summary) => summary.ended === "budget")).toBe(true);
    expect(invocations[1]?.projections[1]?.from).toBe(invocations[0]?.projections[1]?.to);
    await store.switchVersion(NAME, 2);
    await append(6);
    const after = await group.run();
    expect(after.projections.map(({ name, to, ended }) => ({ name, to, ended }))).toEqual([
      { name: "totals@1", to: 0, ended: "inactive" },
      { name: NAME, to: 106, ended: "caughtUp" },
    ]);
    expect(await rows("v_totals")).toEqual(await expected(2));
    expect(await rows("v_totals_v1")).toEqual(await expected(1, 100));
    // An idle run reads the projection's versions once for both listings (one snapshot, never two states), then its checkpoint and the log in one batch.
    await expect(group.run()).resolves.toMatchObject({ queries: 1 + 2, ended: "caughtUp" });
  });

  it("a group member whose version is switched away mid-run stops there; the others go on", async () => {
    const store = new D1CheckpointStore(db);
    await append(40);
    await store.startRebuild(NAME, 2, { tables: { v_totals: "v_totals_v2" }, create: [db.prepare(CREATE("v_totals_v2"))] });
    await runner(2, store).run();
    await runner(1, store).run();
    // A store wrapper that switches version 2 live right before the group's first commit: version 1's part is fenced out.
    let switched = false;
    const switching = {
      load: store.load.bind(store),
      loadMany: store.loadMany.bind(store),
      commit: store.commit.bind(store),
      replayParked: store.replayParked.bind(store),
      versions: store.versions.bind(store),
      commitMany: async (commits: Parameters<D1CheckpointStore["commitMany"]>[0], options?: Parameters<D1CheckpointStore["commitMany"]>[1]) => {
        if (!switched) {
          switched = true;
          await store.switchVersion(NAME, 2);
        }
        return store.commitMany(commits, options);
      },
    };
    await append(5);
    const group = new ProjectionGroup<Event>({
      name: "totals-group",
      store: switching,
      batchSize: 25,
      readEvents: (after, limit) => db.prepare("SELECT position, account, amount FROM v_events WHERE position > ?1 ORDER BY position LIMIT ?2").bind(after, limit).all<Event>().then((r) => r.results),
      projections: [
        { name: NAME, version: 1, project: project(1, "v_totals") },
        { name: "scratch", project: () => [] },
      ],
    });
    const summary = await group.run();
    expect(summary.projections.map(({ name, to, ended }) => ({ name, to, ended }))).toEqual([
      { name: NAME, to: 40, ended: "switched" },
      { name: "scratch", to: 45, ended: "caughtUp" },
    ]);
    expect(await rows("v_totals_v1")).toEqual(await expected(1, 40));
  });

  it("checks read names and tables against the database before anything is written", async () => {
    const store = new D1CheckpointStore(db);
    await append(12);
    await runner(1, store).run();
    const create2 = [db.prepare(CREATE("v_totals_v2"))];
    // A new version must cover every read name of the live one.
    await expect(store.startRebuild(NAME, 2, { tables: { v_totals: "v_totals_v2" }, liveTables: { v_totals: "v_totals", v_other: "v_other" } })).rejects.toThrow(
      /has none for v_other/,
    );
    // Its tables must be empty (a rebuild projects every event into them), and tables, not views.
    await db.batch([db.prepare(CREATE("v_totals_v2")), db.prepare("INSERT INTO v_totals_v2 (account, total, n) VALUES ('stale', 1, 1)")]);
    await expect(store.startRebuild(NAME, 2, { tables: { v_totals: "v_totals_v2" } })).rejects.toThrow(/starts from empty tables, and v_totals_v2 has rows/);
    await expect(store.startRebuild(NAME, 2, { tables: { v_totals: "v_events" } })).rejects.toThrow(/v_events has rows/);
    await db.prepare("CREATE VIEW v_view AS SELECT * FROM v_totals").run();
    await expect(store.startRebuild(NAME, 2, { tables: { v_totals: "v_view" } })).rejects.toThrow(/"v_view" is a view, not a table/);
    expect(await db.prepare("SELECT COUNT(*) AS n FROM projection_versions").first("n")).toBe(0);
    await db.prepare("DROP TABLE v_totals_v2").run();

    // Read names compare as SQLite compares identifiers; a view that reads the live table reads the view after the switch.
    await store.startRebuild(NAME, 2, { tables: { v_totals: "v_totals_v2" }, liveTables: { V_Totals: "V_TOTALS" }, create: create2 });
    await runner(2, store).run();
    await store.switchVersion(NAME, 2);
    expect(await db.prepare("SELECT type FROM sqlite_master WHERE name = 'v_totals'").first("type")).toBe("view");
    expect(await rows("v_view")).toEqual(await expected(2));
    expect(await rows("v_totals_v1")).toEqual(await expected(1));

    // A read name that is a table or a view no version records is refused, not replaced.
    await db.batch([db.prepare("CREATE TABLE v_extra (x)"), db.prepare("CREATE VIEW v_mine AS SELECT 1 AS one")]);
    await expect(store.startRebuild(NAME, 3, { tables: { v_totals: "v_totals_v3", v_extra: "v_extra_v3" } })).rejects.toThrow(
      /the read name "v_extra" is a table that no version records/,
    );
    await expect(store.startRebuild(NAME, 3, { tables: { v_totals: "v_totals_v3", v_mine: "v_mine_v3" } })).rejects.toThrow(/the read name "v_mine" is a view that no version records/);
    // The name the first table was set aside as is not a new version's table; another projection's table is not either.
    await expect(store.startRebuild(NAME, 3, { tables: { v_totals: "v_totals_v1" } })).rejects.toThrow(/belongs to another version/);
    await db.prepare("CREATE TABLE v_other (x)").run();
    await store.startRebuild("other", 2, { tables: { v_other: "v_other_v2" }, create: [db.prepare("CREATE TABLE v_other_v2 (x)")] });
    await expect(store.startRebuild(NAME, 3, { tables: { v_totals: "v_other_v2" } })).rejects.toThrow(/"v_other_v2" belongs to projection "other"/);
    // A new version's table that is missing at the switch is refused too.
    await store.startRebuild(NAME, 3, { tables: { v_totals: "v_totals_v3" } });
    await expect(store.switchVersion(NAME, 3)).rejects.toThrow(/table "v_totals_v3" of version 3 does not exist/);
    expect((await store.versions(NAME)).map((v) => `${v.version} ${v.state}`)).toEqual(["1 retired", "2 live", "3 building"]);
  });

  it("on a first rebuild, the live tables default to the read names that are tables; a new read name becomes a view", async () => {
    const store = new D1CheckpointStore(db);
    await append(8);
    await runner(1, store).run();
    await expect(store.startRebuild(NAME, 2, { tables: { v_totals: "v_totals_v2" }, liveTables: { v_totals: "v_nothere" } })).rejects.toThrow(
      /the live version's table "v_nothere" \(for v_totals\) does not exist/,
    );
    await store.startRebuild(NAME, 2, {
      tables: { v_totals: "v_totals_v2", v_counts: "v_counts_v2" },
      create: [db.prepare(CREATE("v_totals_v2")), db.prepare("CREATE TABLE v_counts_v2 (n INTEGER)"), db.prepare("INSERT INTO v_counts_v2 (n) VALUES (8)")],
    });
    expect((await store.versions(NAME))[0]?.tables).toEqual({ v_totals: "v_totals" });
    await runner(2, store).run();
    await store.switchVersion(NAME, 2);
    expect(await db.prepare("SELECT n FROM v_counts").first("n")).toBe(8);
  });

  it("views that read the first table, the views over them and their triggers are made again over the new view", async () => {
    const store = new D1CheckpointStore(db);
    await append(12);
    await runner(1, store).run();
    await db.batch([
      db.prepare("CREATE VIEW v_rich AS SELECT account, total FROM v_totals WHERE total > 0"),
      db.prepare("CREATE VIEW v_richest AS SELECT account FROM v_rich ORDER BY total DESC LIMIT 1"),
      db.prepare("CREATE TRIGGER v_rich_insert INSTEAD OF INSERT ON v_rich BEGIN SELECT RAISE(ABORT, 'read only'); END"),
    ]);
    await store.startRebuild(NAME, 2, { tables: { v_totals: "v_totals_v2" }, create: [db.prepare(CREATE("v_totals_v2"))] });
    await runner(2, store).run();
    await store.switchVersion(NAME, 2);
    const totals = await expected(2);
    const top = [...totals].sort((a, b) => b.total - a.total)[0]?.account;
    expect(await db.prepare("SELECT account FROM v_richest").first("account")).toBe(top);
    expect((await db.prepare("SELECT SUM(total) AS s FROM v_rich").first("s"))).toBe(totals.reduce((sum, row) => sum + row.total, 0));
    await expect(db.prepare("INSERT INTO v_rich (account, total) VALUES ('x', 1)").run()).rejects.toThrow(/read only/);
  });

  it("a rebuild dropped and started again between the switch's read and its batch is not switched to", async () => {
    const store = new D1CheckpointStore(db);
    await builtBeside(store, 10);
    // (Started an hour ago, so that the rebuild started again below has another start time whatever the clock's resolution.)
    await db.prepare("UPDATE projection_versions SET started_at = started_at - 3600000 WHERE version = 2").run();
    // Right before the switch's batch, another invocation drops the rebuild and starts it again (empty, at 0).
    const racing = interceptD1(db, async (call, send) => {
      if (call.kind === "batch" && call.sql.some((sql) => sql.startsWith("CREATE VIEW"))) {
        await store.dropVersion(NAME, 2);
        await db.prepare(`UPDATE checkpoints SET position = 0 WHERE name = ?1`).bind(NAME).run();
        await store.startRebuild(NAME, 2, { tables: { v_totals: "v_totals_v2" }, create: [db.prepare(CREATE("v_totals_v2"))] });
      }
      return send();
    });
    await expect(new D1CheckpointStore(racing).switchVersion(NAME, 2)).rejects.toThrow(ProjectionVersionError);
    expect((await store.versions(NAME)).map((v) => `${v.version} ${v.state}`)).toEqual(["1 live", "2 building"]);
    expect(await db.prepare("SELECT type FROM sqlite_master WHERE name = 'v_totals'").first("type")).toBe("table");
  });

  it("a table found empty that is filled before the rebuild's batch runs is refused in the batch", async () => {
    await append(5);
    await runner(1, new D1CheckpointStore(db)).run();
    await db.prepare(CREATE("v_totals_v2")).run(); // made by a migration, empty
    const racing = interceptD1(db, async (call, send) => {
      if (call.kind === "batch" && call.sql.some((sql) => sql.includes("'building'"))) {
        await db.prepare("INSERT INTO v_totals_v2 (account, total, n) VALUES ('meanwhile', 1, 1)").run();
      }
      return send();
    });
    await expect(new D1CheckpointStore(racing).startRebuild(NAME, 2, { tables: { v_totals: "v_totals_v2" } })).rejects.toThrow(ProjectionVersionError);
    expect(await db.prepare("SELECT COUNT(*) AS n FROM projection_versions").first("n")).toBe(0);
    await expect(new D1CheckpointStore(db).load("totals@2")).resolves.toEqual({ position: 0, found: false });
  });

  it("a switch, a drop and a rebuild whose responses are lost are found landed, not sent twice", async () => {
    const faulty = injectFaults(db);
    const store = new D1CheckpointStore(faulty.db, { retry: { attempts: 3, baseDelayMs: 1 } });
    await append(6);
    await runner(1, store).run();
    faulty.inject({ kinds: ["batch"], sql: /'building'/, timing: "after" });
    await store.startRebuild(NAME, 2, { tables: { v_totals: "v_totals_v2" }, create: [db.prepare(CREATE("v_totals_v2"))] });
    await runner(2, store).run();
    faulty.inject({ kinds: ["batch"], sql: /CREATE VIEW/, timing: "after" });
    await store.switchVersion(NAME, 2);
    faulty.inject({ kinds: ["batch"], sql: /DELETE FROM projection_versions/, timing: "after" });
    await store.dropVersion(NAME, 1);
    expect(faulty.faults.map((fault) => fault.timing)).toEqual(["after", "after", "after"]);
    // Each landed once: one record per version step, the view made once, the old table gone.
    expect((await store.versions(NAME)).map((v) => `${v.version} ${v.state}`)).toEqual(["2 live"]);
    expect(await rows("v_totals")).toEqual(await expected(2));
    expect(await db.prepare("SELECT name FROM sqlite_master WHERE name = 'v_totals_v1'").first()).toBeNull();
  });

  it("what the records could not recover from is refused at startRebuild", async () => {
    const store = new D1CheckpointStore(db);
    await append(4);
    await runner(1, store).run();
    // No read name is a table (a typo): nothing could be recorded as the live version's tables.
    await expect(store.startRebuild(NAME, 2, { tables: { v_totalz: "v_totals_v2" } })).rejects.toThrow(/none of the read names \(v_totalz\) is a table now: give liveTables/);
    // The read name is a table, but the live version's table is said to be another: the switch could never replace it.
    await db.prepare(CREATE("v_totals_live")).run();
    await expect(store.startRebuild(NAME, 2, { tables: { v_totals: "v_totals_v2" }, liveTables: { v_totals: "v_totals_live" } })).rejects.toThrow(
      /the read name "v_totals" is a table, but the live version's table for it is "v_totals_live"/,
    );
    // Another tool's checkpoint under the rebuild's name is not adopted.
    await store.save("totals@2", 3);
    await expect(store.startRebuild(NAME, 2, { tables: { v_totals: "v_totals_v2" }, create: [db.prepare(CREATE("v_totals_v2"))] })).rejects.toThrow(/its checkpoint exists already/);
    expect(await db.prepare("SELECT COUNT(*) AS n FROM projection_versions").first("n")).toBe(0);
    // A versioned projection's name has no @ (its rebuilds' checkpoints do).
    await expect(store.startRebuild("a@b", 2, { tables: { v_totals: "v_totals_v2" } })).rejects.toThrow(/may not have @ in its name/);
    expect(() => new ProjectionRunner<Event>({ name: "a@b", version: 1, store, readEvents: () => Promise.resolve([]), project: () => [] })).toThrow(CheckpointRangeError);
  });

  it("saveStatement keeps its fence: a statement of a version switched away fails in the caller's own batch", async () => {
    const store = new D1CheckpointStore(db);
    await builtBeside(store, 10);
    await store.switchVersion(NAME, 2);
    const late = db.prepare("INSERT INTO v_totals_v1 (account, total, n) VALUES ('late', 1, 1)");
    const error = await db.batch([store.saveStatement(NAME, 11, { expected: 10, fence: { name: NAME, version: 1, state: "live" } }), late]).catch((e: unknown) => e);
    expect(isCheckpointConflict(error)).toBe(true);
    await expect(store.load(NAME)).resolves.toEqual({ position: 10, found: true });
    expect((await rows("v_totals_v1")).some((row) => row.account === "late")).toBe(false);
  });

  it("a switch that fails part-way applies nothing: one batch", async () => {
    const store = new D1CheckpointStore(db);
    await builtBeside(store, 15);
    // A view elsewhere that SQLite cannot read makes the rename, late in the batch, fail.
    await db.batch([db.prepare("CREATE TABLE v_gone (x)"), db.prepare("CREATE VIEW v_broken AS SELECT x FROM v_gone"), db.prepare("DROP TABLE v_gone")]);
    await expect(store.switchVersion(NAME, 2)).rejects.toThrow(/a view or trigger SQLite cannot read .*v_broken/);
    expect((await store.versions(NAME)).map((v) => v.state)).toEqual(["live", "building"]);
    await expect(store.load(NAME)).resolves.toEqual({ position: 15, found: true });
    await expect(store.load("totals@2")).resolves.toEqual({ position: 15, found: true });
    expect(await db.prepare("SELECT type FROM sqlite_master WHERE name = 'v_totals'").first("type")).toBe("table");
    expect(await rows("v_totals")).toEqual(await expected(1));
  });

  it("checks every new call's input before any query, and writes nothing", async () => {
    const counted = countD1(db);
    const store = new D1CheckpointStore(counted.db);
    const tables = { v_totals: "v_totals_v2" };
    const bad: [() => Promise<unknown>, new (...args: never[]) => Error, RegExp][] = [
      [() => store.startRebuild("", 2, { tables }), CheckpointRangeError, /name must not be empty/],
      [() => store.startRebuild(NAME, 0, { tables }), CheckpointRangeError, /version must be an integer from 1/],
      [() => store.startRebuild(NAME, 1.5, { tables }), CheckpointRangeError, /version must be an integer/],
      [() => store.startRebuild(NAME, "2" as unknown as number, { tables }), CheckpointTypeError, /version must be a number/],
      [() => store.startRebuild(NAME, 2, undefined as never), CheckpointTypeError, /options.tables must be a plain object/],
      [() => store.startRebuild(NAME, 2, { tables: {} }), CheckpointRangeError, /must name 1 to 20 tables/],
      [() => store.startRebuild(NAME, 2, { tables: { v_totals: "v totals" } }), CheckpointRangeError, /must be an identifier/],
      [() => store.startRebuild(NAME, 2, { tables: { 'x"; DROP TABLE checkpoints; --': "t" } }), CheckpointRangeError, /must be an identifier/],
      [() => store.startRebuild(NAME, 2, { tables: { v_totals: "v_totals" } }), CheckpointRangeError, /may not be a read name/],
      [() => store.startRebuild(NAME, 2, { tables: { v_totals: "checkpoints" } }), CheckpointRangeError, /package's tables/],
      [() => store.startRebuild(NAME, 2, { tables: { v_totals: "sqlite_master" } }), CheckpointRangeError, /sqlite_/],
      [() => store.startRebuild(NAME, 2, { tables: { a: "t", b: "t" } }), CheckpointRangeError, /twice/],
      [() => store.startRebuild(NAME, 2, { tables: { v_totals: 2 as unknown as string } }), CheckpointTypeError, /must be a table or column name/],
      [() => store.startRebuild(NAME, 2, { tables, liveTables: [] as never }), CheckpointTypeError, /options.liveTables must be a plain object/],
      [() => store.startRebuild(NAME, 2, { tables, create: ["CREATE TABLE t (x)"] as never }), CheckpointTypeError, /options.create/],
      [() => store.switchVersion(NAME, -1), CheckpointRangeError, /version must be an integer/],
      [() => store.switchVersion(NAME, 2, { retire: "later" as never }), CheckpointRangeError, /retire must be "keep" or "drop"/],
      [() => store.switchVersion(NAME, 2, new Date() as never), CheckpointTypeError, /must be a plain object/],
      [() => store.dropVersion(NAME, undefined as never), CheckpointTypeError, /version must be a number, got undefined/],
      [() => store.versionState(NAME, Number.NaN), CheckpointRangeError, /version must be an integer/],
      [() => store.versions(42 as never), CheckpointTypeError, /name must be a string/],
      [() => store.status(NAME, { eventTimes: { table: "v events", time: "at" } }), CheckpointRangeError, /eventTimes.table must be an identifier/],
      [() => store.status(NAME, { eventTimes: { table: "v_events", time: 1 as never } }), CheckpointTypeError, /eventTimes.time must be a table or column name/],
      [() => store.status(NAME, { eventTimes: { table: "v_events", time: "at", column: "x" } as never }), CheckpointTypeError, /unknown key "column"/],
      [async () => store.statuses({ eventTimes: "events" as never }).next(), CheckpointTypeError, /eventTimes must be an object/],
      [() => store.commit(NAME, 1, [], { fence: { name: NAME, version: 1, state: "retired" as never } }), CheckpointRangeError, /fence.state must be "live" or "building"/],
      [() => store.commit(NAME, 1, [], { fence: { name: NAME, version: 2, state: "building" } }), CheckpointRangeError, /checkpoint is "totals@2", not "totals"/],
      [() => store.commit(NAME, 1, [], { fence: { name: NAME, version: 0, state: "live" } }), CheckpointRangeError, /fence.version must be an integer from 1/],
    ];
    for (const [call, type, message] of bad) {
      const error = await call().catch((e: unknown) => e);
      expect(error, String(message)).toBeInstanceOf(type);
      expect((error as Error).message).toMatch(message);
    }
    expect(counted.calls).toEqual([]);
    expect(() => runner(0)).toThrow(CheckpointRangeError);
    expect(
      () =>
        new ProjectionRunner<Event>({
          name: NAME,
          version: 2,
          store: { load: () => Promise.resolve({ position: 0, found: false }), commit: () => Promise.resolve(), replayParked: () => Promise.resolve(false) },
          readEvents: () => Promise.resolve([]),
          project: () => [],
        }),
    ).toThrow(/a store that knows projection versions/);
    const group = (projections: { name: string; version?: number }[]): ProjectionGroup<Event> =>
      new ProjectionGroup<Event>({ name: "g", store, readEvents: () => Promise.resolve([]), projections: projections.map((p) => ({ ...p, project: () => [] })) });
    expect(() => group([{ name: NAME, version: 1 }, { name: NAME, version: 1 }])).toThrow(/names "totals" twice/);
    expect(() => group([{ name: NAME }, { name: NAME, version: 2 }])).toThrow(/names "totals" twice/);
    expect(() => group([{ name: NAME, version: 0 }])).toThrow(CheckpointRangeError);
    expect(await db.prepare("SELECT COUNT(*) AS n FROM projection_versions").first("n")).toBe(0);
  });
});
