// What a projection costs (issue: "what a projection costs"): rows read and
// written, as D1 bills them, taken from the run summaries' row fields alone
// (rowsRead, rowsWritten and the package's own part, ownRowsRead and
// ownRowsWritten), and turned into dollars with dollarsFor. Rows do not
// depend on time, so nothing here is timed or delayed. Every measured run is
// warm: the read model's rows and the checkpoints exist (one run over the
// first events created them), and the run projects the next events, so its
// writes are updates in place and its commits plain ones.
import {
  D1CheckpointStore,
  jsonRowStatements,
  ProjectionGroup,
  ProjectionRunner,
  type GroupProjection,
  type RowUsage,
  type RunSummary,
} from "../src/index.js";
import { dollarsFor, PRICES } from "../src/metrics.js";
import { count, ratio, type BenchTable } from "./harness.js";
import type { BenchScale } from "./suites.js";

/** The titles of the cost tables, in the order docs/benchmarks.md shows them (after "Five projections: one group against five runners"). */
export const COST_TITLES: readonly string[] = [
  "Cost in rows: per-event against set-based writes",
  "Cost in rows: a group of five against five runners",
  "Cost in rows: a leased run against a plain one",
];

const EVENTS = "cost_events";
/** The read model of the first suite: one row per account, as test/support/ledger.ts's ledger_balances. */
const BALANCES = "cost_balances";
/** The read model of the group and lease suites: each projection's own rows. */
const PROJECTION_BALANCES = "cost_projection_balances";

/** An amount credited to an account (the account is the position modulo the suite's account count). */
interface CostEvent {
  readonly position: number;
  readonly account: string;
  readonly amount: number;
}

const ADD_BALANCE = "ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance, applied = applied + excluded.applied";
/** One upsert per event, as creditStatement (test/support/ledger.ts). */
const PER_EVENT_SQL = `INSERT INTO ${BALANCES} (account, balance, applied) VALUES (?1, ?2, 1) ${ADD_BALANCE}`;
/** One upsert per batch: the batch's events as one JSON value, summed per account. */
const SET_BASED_SQL =
  `INSERT INTO ${BALANCES} (account, balance, applied) ` +
  `SELECT value ->> 'a', SUM(value ->> 'x'), COUNT(*) FROM json_each(?1) WHERE true GROUP BY 1 ${ADD_BALANCE}`;

/** Up to `limit` events after `after`, each credited to account `position % accounts`. */
function eventsQuery(db: D1Database, accounts: number): (after: number, limit: number) => D1PreparedStatement {
  return (after, limit) =>
    db
      .prepare(`SELECT position, 'acct-' || (position % ?3) AS account, amount FROM ${EVENTS} WHERE position > ?1 ORDER BY position LIMIT ?2`)
      .bind(after, limit, accounts);
}

/** Creates the suite's tables if need be, and empties the event log. */
async function createTables(db: D1Database): Promise<void> {
  await db.batch([
    db.prepare(`CREATE TABLE IF NOT EXISTS ${EVENTS} (position INTEGER PRIMARY KEY, amount INTEGER NOT NULL)`),
    db.prepare(`CREATE TABLE IF NOT EXISTS ${BALANCES} (account TEXT PRIMARY KEY, balance INTEGER NOT NULL, applied INTEGER NOT NULL)`),
    db.prepare(
      `CREATE TABLE IF NOT EXISTS ${PROJECTION_BALANCES} (projection TEXT NOT NULL, account TEXT NOT NULL, balance INTEGER NOT NULL, ` +
        "applied INTEGER NOT NULL, PRIMARY KEY (projection, account))",
    ),
    db.prepare(`DELETE FROM ${EVENTS}`),
  ]);
}

/** Appends the events at positions `from` to `to` (amounts 1 to 7) in one statement. */
async function appendEvents(db: D1Database, from: number, to: number): Promise<void> {
  await db
    .prepare(
      `INSERT INTO ${EVENTS} (position, amount) WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2) ` +
        "SELECT i, i % 7 + 1 FROM n",
    )
    .bind(from, to)
    .run();
}

/** Drops the suite's tables and deletes the checkpoints (with their move times) and leases of `names`. */
async function cleanUp(db: D1Database, names: readonly string[]): Promise<void> {
  await db.batch([
    db.prepare(`DROP TABLE IF EXISTS ${EVENTS}`),
    db.prepare(`DROP TABLE IF EXISTS ${BALANCES}`),
    db.prepare(`DROP TABLE IF EXISTS ${PROJECTION_BALANCES}`),
    db.prepare("DELETE FROM checkpoints WHERE name IN (SELECT value FROM json_each(?1))").bind(JSON.stringify(names)),
    db.prepare("DELETE FROM projection_leases WHERE name IN (SELECT value FROM json_each(?1))").bind(JSON.stringify(names)),
  ]);
}

/**
 * Throws unless `model` (account, balance, applied; `?3` is the checkpoint's
 * name) holds every account's balance and count of the events up to `upTo`,
 * and no other row, and the checkpoint `name` is at `upTo`.
 */
async function verify(db: D1Database, label: string, model: string, name: string, accounts: number, upTo: number): Promise<void> {
  const row = await db
    .prepare(
      `WITH expected AS (SELECT 'acct-' || (position % ?2) AS account, SUM(amount) AS balance, COUNT(*) AS applied FROM ${EVENTS} WHERE position <= ?1 GROUP BY 1), ` +
        `model AS (${model}) ` +
        "SELECT (SELECT COUNT(*) FROM (SELECT * FROM expected EXCEPT SELECT * FROM model)) + " +
        "(SELECT COUNT(*) FROM (SELECT * FROM model EXCEPT SELECT * FROM expected)) AS wrong, " +
        "(SELECT position FROM checkpoints WHERE name = ?3) AS checkpoint",
    )
    .bind(upTo, accounts, name)
    .first<{ wrong: number; checkpoint: number | null }>();
  if (row?.wrong !== 0 || row.checkpoint !== upTo) {
    throw new Error(`${label}: ${String(row?.wrong)} read-model rows wrong, checkpoint at ${String(row?.checkpoint)}, expected ${upTo}`);
  }
}

/** Throws unless the measured run projected exactly the `events` events after `from`. */
function checkRun(label: string, summary: Pick<RunSummary, "from" | "to" | "events">, from: number, events: number): void {
  if (summary.from !== from || summary.to !== from + events || summary.events !== events) {
    throw new Error(`${label}: projected ${summary.events} events from ${summary.from} to ${summary.to}; expected ${events} after ${from}`);
  }
}

/** The rows a batch of `batchSize` must change at least, summed over the batches of positions `from + 1` to `from + events`: its distinct accounts. */
function readModelFloor(from: number, events: number, batchSize: number, accounts: number): number {
  let floor = 0;
  for (let start = from + 1; start <= from + events; start += batchSize) {
    const distinct = new Set<number>();
    for (let position = start; position < start + batchSize && position <= from + events; position++) distinct.add(position % accounts);
    floor += distinct.size;
  }
  return floor;
}

/**
 * How many events the warm-up run projects: as many as the measured run, and
 * at least one per account, so that every account's row exists before it.
 */
function warmUpEvents(events: number, accounts: number): number {
  return Math.max(events, accounts);
}

/** The read model's rows written: every row written but the package's own. */
function readModelWritten(rows: RowUsage): number {
  return rows.rowsWritten - rows.ownRowsWritten;
}

/** `1,020.2` */
function tenths(value: number): string {
  return value.toLocaleString("en-US", { maximumFractionDigits: 1 });
}

/** `$1.020`: to a tenth of a cent. */
function dollars(value: number): string {
  return `$${value.toFixed(3)}`;
}

function perThousand(value: number, events: number): string {
  return tenths((value * 1000) / events);
}

function perMillionEvents(rows: RowUsage, events: number): string {
  return dollars((dollarsFor(rows) * 1_000_000) / events);
}

function met(ok: boolean): string {
  return ok ? "met" : "not met";
}

const PRICE_NOTE =
  `Dollars at Cloudflare's D1 prices as read on ${PRICES.readOn} (PRICES in ./metrics): $${PRICES.rowsWrittenPerMillion.toFixed(2)} per million rows written, ` +
  `$${PRICES.rowsReadPerMillion} per million rows read, beyond the included amounts (dollarsFor of the summary's rowsRead and rowsWritten).`;

/**
 * Per-event upserts against one set-based upsert per batch, at batch sizes
 * 100 and 1,000, over events spread over 10, 100 and 1,000 accounts: the read
 * model's rows written against the rows the batches must change, the
 * package's own rows per commit, and rows and dollars per event.
 */
export async function costOfWrites(db: D1Database, scale: BenchScale): Promise<BenchTable> {
  const events = scale.events; // 1,000 in npm run bench, 30 in the smoke run
  const store = new D1CheckpointStore(db);
  const cases = (["per-event", "set-based"] as const).flatMap((writes) =>
    [100, 1000].flatMap((batchSize) => [10, 100, 1000].map((accounts) => ({ writes, batchSize, accounts }))),
  );
  const names = cases.map(({ writes, batchSize, accounts }) => `cost-${writes}-b${batchSize}-a${accounts}`);
  await cleanUp(db, names);
  const rows: (string | number)[][] = [];
  let worstSetBased = 0;
  let worstOwn = 0;
  for (const [i, { writes, batchSize, accounts }] of cases.entries()) {
    const name = names[i] ?? "";
    const label = `${writes} writes, batchSize ${count(batchSize)}, ${count(accounts)} accounts`;
    await createTables(db);
    await db.batch([db.prepare(`DELETE FROM ${BALANCES}`), db.prepare("DELETE FROM checkpoints WHERE name = ?1").bind(name)]);
    const runner = new ProjectionRunner<CostEvent>({
      name,
      store,
      batchSize,
      eventsQuery: eventsQuery(db, accounts),
      project: (batch) => {
        if (writes === "set-based") return jsonRowStatements(db, SET_BASED_SQL, batch.map((e) => ({ a: e.account, x: e.amount })));
        const upsert = db.prepare(PER_EVENT_SQL);
        return batch.map((e) => upsert.bind(e.account, e.amount));
      },
    });
    const model = `SELECT account, balance, applied FROM ${BALANCES}`;
    const warm = warmUpEvents(events, accounts);
    await appendEvents(db, 1, warm);
    checkRun(`${label}, warm-up`, await runner.run(), 0, warm);
    await verify(db, `${label}, warm-up`, model, name, accounts, warm); // every account exists: the measured writes update in place
    await appendEvents(db, warm + 1, warm + events);
    const summary = await runner.run();
    checkRun(label, summary, warm, events);
    await verify(db, label, model, name, accounts, warm + events);
    const floor = readModelFloor(warm, events, batchSize, accounts);
    const written = readModelWritten(summary);
    const ownPerCommit = summary.ownRowsWritten / summary.batches;
    if (writes === "set-based") worstSetBased = Math.max(worstSetBased, written / floor);
    worstOwn = Math.max(worstOwn, ownPerCommit);
    rows.push([
      writes,
      count(batchSize),
      count(accounts),
      count(floor),
      count(written),
      ratio(written / floor),
      tenths(ownPerCommit),
      perThousand(summary.rowsWritten, events),
      perThousand(summary.rowsRead, events),
      perMillionEvents(summary, events),
    ]);
  }
  await cleanUp(db, names);
  return {
    title: COST_TITLES[0] ?? "",
    note:
      `One eventsQuery ProjectionRunner per row over ${count(events)} new events (account = position % accounts), on a warm read model: ` +
      `a first run over max(${count(events)}, accounts) earlier events created every account and the checkpoint, so every write measured updates a row in place ` +
      `and every commit is a plain one. Per-event writes send one upsert per event (as creditStatement); set-based writes one ` +
      "`INSERT … SELECT … FROM json_each(?1) … GROUP BY account ON CONFLICT DO UPDATE` per batch (jsonRowStatements). " +
      "The read model's floor is the rows the batches must change: the distinct accounts of each batch, summed over the batches. " +
      "Every figure comes from the measured run's summary: the read model's rows written are rowsWritten − ownRowsWritten, own rows per commit are ownRowsWritten / batches, " +
      "rows read include the event queries and the checkpoint's load. Each run's read model is checked account by account. " +
      "Rows read are every row SQLite visits: a per-event upsert reads the row it updates, a set-based one reads each event twice " +
      "(json_each, then the GROUP BY's sorter) and each row it updates, so set-based writes read more, at a thousandth of the price of a row written. " +
      `${PRICE_NOTE} ` +
      `Targets: set-based writes within 1.1× of the read model's floor: ${met(worstSetBased <= 1.1)} (at most ${ratio(worstSetBased)}); ` +
      `own rows ≤ 2 per plain commit: ${met(worstOwn <= 2)} (at most ${tenths(worstOwn)}).`,
    columns: [
      "writes",
      "batchSize",
      "accounts",
      "read model's floor (rows)",
      "read model's rows written",
      "vs floor",
      "own rows written per commit",
      "rows written per 1,000 events",
      "rows read per 1,000 events",
      "$ per million events",
    ],
    rows,
  };
}

const ADD_PROJECTION_BALANCE = "ON CONFLICT (projection, account) DO UPDATE SET balance = balance + excluded.balance, applied = applied + excluded.applied";

/** A projection into its own rows of cost_projection_balances, one set-based upsert per batch. */
function member(db: D1Database, name: string): GroupProjection<CostEvent, readonly D1PreparedStatement[]> {
  // The name is the suite's own constant: a literal in the SQL keeps the JSON rows to account and amount.
  const sql =
    `INSERT INTO ${PROJECTION_BALANCES} (projection, account, balance, applied) ` +
    `SELECT '${name}', value ->> 'a', SUM(value ->> 'x'), COUNT(*) FROM json_each(?1) WHERE true GROUP BY 2 ${ADD_PROJECTION_BALANCE}`;
  return { name, project: (batch) => jsonRowStatements(db, sql, batch.map((e) => ({ a: e.account, x: e.amount }))) };
}

/** The rows of `name` in cost_projection_balances, for verify. */
const PROJECTION_MODEL = `SELECT account, balance, applied FROM ${PROJECTION_BALANCES} WHERE projection = ?3`;

const GROUP_BATCH = 100;
const GROUP_ACCOUNTS = 100;

/**
 * Five projections over the same events, as one ProjectionGroup against five
 * ProjectionRunners: rows read and written and queries per 1,000 events.
 */
export async function costOfGroup(db: D1Database, scale: BenchScale): Promise<BenchTable> {
  const events = scale.events;
  const store = new D1CheckpointStore(db);
  const query = eventsQuery(db, GROUP_ACCOUNTS);
  const grouped = Array.from({ length: 5 }, (_, i) => `cost-group-${i + 1}`);
  const separate = Array.from({ length: 5 }, (_, i) => `cost-runner-${i + 1}`);
  const names = [...grouped, ...separate];
  await cleanUp(db, names);
  await createTables(db);
  const group = new ProjectionGroup<CostEvent>({
    name: "cost-group",
    store,
    batchSize: GROUP_BATCH,
    eventsQuery: query,
    projections: grouped.map((name) => member(db, name)),
  });
  const runners = separate.map(
    (name) => new ProjectionRunner<CostEvent>({ name, store, batchSize: GROUP_BATCH, eventsQuery: query, project: member(db, name).project }),
  );
  const warm = warmUpEvents(events, GROUP_ACCOUNTS);
  await appendEvents(db, 1, warm);
  const warmed: Pick<RunSummary, "name" | "from" | "to" | "events">[] = [...(await group.run()).projections];
  for (const runner of runners) warmed.push(await runner.run());
  for (const projected of warmed) {
    checkRun(`${projected.name}, warm-up`, projected, 0, warm);
    await verify(db, `${projected.name}, warm-up`, PROJECTION_MODEL, projected.name, GROUP_ACCOUNTS, warm);
  }
  await appendEvents(db, warm + 1, warm + events);
  const groupSummary = await group.run();
  const runnerSummaries: RunSummary[] = [];
  for (const runner of runners) runnerSummaries.push(await runner.run());
  for (const projected of [...groupSummary.projections, ...runnerSummaries]) {
    checkRun(projected.name, projected, warm, events);
    await verify(db, projected.name, PROJECTION_MODEL, projected.name, GROUP_ACCOUNTS, warm + events);
  }
  await cleanUp(db, names);
  const sumRows = (summaries: readonly RowUsage[]): RowUsage => ({
    rowsRead: summaries.reduce((n, s) => n + s.rowsRead, 0),
    rowsWritten: summaries.reduce((n, s) => n + s.rowsWritten, 0),
    ownRowsRead: summaries.reduce((n, s) => n + s.ownRowsRead, 0),
    ownRowsWritten: summaries.reduce((n, s) => n + s.ownRowsWritten, 0),
  });
  const measured = [
    {
      label: "five projections as a group",
      rows: sumRows([groupSummary]),
      queries: groupSummary.queries,
      commits: groupSummary.projections.reduce((n, p) => n + p.batches, 0),
    },
    {
      label: "five separate runners",
      rows: sumRows(runnerSummaries),
      queries: runnerSummaries.reduce((n, s) => n + s.queries, 0),
      commits: runnerSummaries.reduce((n, s) => n + s.batches, 0),
    },
  ] as const;
  const [groupCost, runnersCost] = measured;
  const readRatio = groupCost.rows.rowsRead / runnersCost.rows.rowsRead;
  const writtenRatio = groupCost.rows.rowsWritten / runnersCost.rows.rowsWritten;
  return {
    title: COST_TITLES[1] ?? "",
    note:
      `${grouped.length} projections over the same ${count(events)} new events, each summing them per account (${GROUP_ACCOUNTS} accounts) into its own rows ` +
      `with one set-based upsert per batch, batchSize ${GROUP_BATCH}, on a warm read model (a first run over ${count(warm)} earlier events created every row and checkpoint): ` +
      `one ProjectionGroup (each batch read once, every projection's writes and checkpoint in one commit batch) against five eventsQuery ProjectionRunners one after another. ` +
      "Per 1,000 events of the log, not per projection; the runners' figures are their five summaries summed. " +
      "Own rows per checkpoint commit: ownRowsWritten over the checkpoints committed (a group batch commits five). Every projection's read model is checked account by account. " +
      `${PRICE_NOTE} ` +
      `The group reads ${ratio(readRatio)} the rows of the five runners (the event query runs once per batch, not five times; each projection's upserts read as much either way) ` +
      `and writes ${ratio(writtenRatio)} the rows: a group saves queries, round trips and event reads, not rows written (each projection writes its own rows and checkpoint either way).`,
    columns: [
      "variant",
      "queries per 1,000 events",
      "rows read per 1,000 events",
      "rows written per 1,000 events",
      "own rows written per checkpoint commit",
      "$ per million events",
      "queries vs runners",
      "rows read vs runners",
      "rows written vs runners",
    ],
    rows: measured.map(({ label, rows, queries, commits }) => [
      label,
      perThousand(queries, events),
      perThousand(rows.rowsRead, events),
      perThousand(rows.rowsWritten, events),
      tenths(rows.ownRowsWritten / commits),
      perMillionEvents(rows, events),
      ratio(queries / runnersCost.queries),
      ratio(rows.rowsRead / runnersCost.rows.rowsRead),
      ratio(rows.rowsWritten / runnersCost.rows.rowsWritten),
    ]),
  };
}

/**
 * A leased run (`lease: true`) against a plain one over the same new events,
 * and both again with nothing new: the package's own rows per run and per commit.
 */
export async function costOfLease(db: D1Database, scale: BenchScale): Promise<BenchTable> {
  const events = scale.events;
  const store = new D1CheckpointStore(db);
  const plainName = "cost-plain";
  const leasedName = "cost-leased";
  const names = [plainName, leasedName];
  await cleanUp(db, names);
  await createTables(db);
  const runner = (name: string, lease: boolean): ProjectionRunner<CostEvent> =>
    new ProjectionRunner<CostEvent>({
      name,
      store,
      batchSize: GROUP_BATCH,
      eventsQuery: eventsQuery(db, GROUP_ACCOUNTS),
      lease,
      project: member(db, name).project,
    });
  const plain = runner(plainName, false);
  const leased = runner(leasedName, true);
  const warm = warmUpEvents(events, GROUP_ACCOUNTS);
  await appendEvents(db, 1, warm);
  for (const [label, summary] of [
    ["plain, warm-up", await plain.run()],
    ["leased, warm-up", await leased.run()],
  ] as const) {
    checkRun(label, summary, 0, warm);
    await verify(db, label, PROJECTION_MODEL, summary.name, GROUP_ACCOUNTS, warm);
  }
  await appendEvents(db, warm + 1, warm + events);
  const measured = [
    { label: "plain run", summary: await plain.run() },
    { label: "leased run (lease: true)", summary: await leased.run() },
    { label: "plain run, nothing new", summary: await plain.run() },
    { label: "leased run, nothing new", summary: await leased.run() },
  ];
  for (const [i, { label, summary }] of measured.entries()) {
    if (summary.yielded) throw new Error(`${label}: yielded to another run's lease`);
    checkRun(label, summary, i < 2 ? warm : warm + events, i < 2 ? events : 0);
    await verify(db, label, PROJECTION_MODEL, summary.name, GROUP_ACCOUNTS, warm + events);
  }
  await cleanUp(db, names);
  const own = (i: number): number => measured[i]?.summary.ownRowsWritten ?? 0;
  const leasePerRun = own(1) - own(0);
  const leaseIdle = own(3) - own(2);
  return {
    title: COST_TITLES[2] ?? "",
    note:
      `Two eventsQuery ProjectionRunners over the same ${count(events)} new events (set-based writes, batchSize ${GROUP_BATCH}, ${GROUP_ACCOUNTS} accounts, ` +
      `a warm read model and checkpoint: a first run over ${count(warm)} earlier events), one with lease: true (a 30 s lease, claimed in the load's round trip and let go at the end, each an update of its row in place), then each run again with nothing new (an idle poll). ` +
      "Own rows are the package's: the checkpoint and its move time, and the lease. " +
      `${PRICE_NOTE} ` +
      `The lease adds ${count(leasePerRun)} own rows written per run (the floor: its claim and its release, 1 row each; decision 0026) whatever the run's length, ` +
      `${tenths(leasePerRun / (measured[1]?.summary.batches ?? 1))} per commit over this run's ${count(measured[1]?.summary.batches ?? 0)} commits; ` +
      `an idle run writes ${count(own(3))} own rows with a lease and ${count(own(2))} without, so a leased poll that finds nothing still costs ${count(leaseIdle)} rows written.`,
    columns: [
      "variant",
      "events",
      "commits",
      "own rows written per run",
      "own rows written per commit",
      "own rows read per run",
      "rows written per 1,000 events",
      "$ per million events",
    ],
    rows: measured.map(({ label, summary }) => [
      label,
      count(summary.events),
      count(summary.batches),
      count(summary.ownRowsWritten),
      summary.batches === 0 ? "—" : tenths(summary.ownRowsWritten / summary.batches),
      count(summary.ownRowsRead),
      summary.events === 0 ? "—" : perThousand(summary.rowsWritten, summary.events),
      summary.events === 0 ? "—" : perMillionEvents(summary, summary.events),
    ]),
  };
}
