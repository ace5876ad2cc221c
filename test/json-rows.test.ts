import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { countD1 } from "../src/testing/intercept.js";
import {
  CheckpointRangeError,
  CheckpointTypeError,
  D1_MAX_STATEMENT_BYTES,
  D1_MAX_VALUE_BYTES,
  D1CheckpointStore,
  D1OperationError,
  jsonRowChunks,
  jsonRowStatements,
  ProjectionRunner,
  type D1Client,
} from "../src/index.js";
import { storedRows } from "./support/helpers.js";
import { freshObject, inObject } from "./support/in-object.js";
import { appendEvents, ledgerRunner, readLedger, resetLedger, type LedgerEvent } from "./support/ledger.js";

const encoder = new TextEncoder();
const bytesOf = (text: string): number => encoder.encode(text).length;

/** A value the type checker would reject, as a plain JavaScript caller passes it. */
function any(value: unknown): never {
  return value as never;
}

/** Wraps `db` so that every `prepare` is recorded: nothing built means none. */
function countPrepares(db: D1Database): { db: D1Database; prepared: string[] } {
  const prepared: string[] = [];
  const wrapped = new Proxy(db, {
    get(target, key) {
      if (key === "prepare") {
        return (sql: string) => {
          prepared.push(sql);
          return target.prepare(sql);
        };
      }
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { db: wrapped, prepared };
}

/** The fewest chunks of at most `limit` bytes that keep the order, by dynamic programming (not greedy). */
function fewestChunks(rows: readonly unknown[], limit: number): number {
  const sizes = rows.map((row) => bytesOf(JSON.stringify(row)));
  const best = [0];
  for (let end = 1; end <= sizes.length; end++) {
    let fewest = Number.POSITIVE_INFINITY;
    let size = 1; // "[" + "]" - the first row's missing comma
    for (let start = end - 1; start >= 0; start--) {
      size += (sizes[start] ?? 0) + 1;
      if (size > limit) break;
      fewest = Math.min(fewest, (best[start] ?? Number.POSITIVE_INFINITY) + 1);
    }
    best.push(fewest);
  }
  return best[sizes.length] ?? Number.NaN;
}

interface NoteRow {
  readonly seq: number;
  readonly note: string | null;
}

/** Rows whose notes mix 1-, 2-, 3- and 4-byte characters of UTF-8. */
function noteRows(count: number): NoteRow[] {
  const units = ["a", "\u00e9", "\u20ac", "\u{1F600}"];
  return Array.from({ length: count }, (_, seq) => ({ seq, note: (units[seq % 4] ?? "a").repeat(5 + ((seq * 7) % 23)) }));
}

const INSERT_NOTES = "INSERT INTO json_rows (seq, note) SELECT value ->> 'seq', value ->> 'note' FROM json_each(?1) WHERE true ORDER BY key";

const UPSERT_BALANCES =
  "INSERT INTO json_balances (account, balance, applied) " +
  "SELECT value ->> 'account', SUM(value ->> 'amount'), COUNT(*) FROM json_each(?1) WHERE true GROUP BY 1 " +
  "ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance, applied = applied + excluded.applied";

/** The insert of notes, padded with a comment of 2-byte characters to exactly `bytes` bytes of UTF-8. */
function paddedSql(bytes: number): string {
  const room = bytes - bytesOf(INSERT_NOTES) - bytesOf(" /**/");
  return `${INSERT_NOTES} /*${"\u00e9".repeat(Math.floor(room / 2))}${"x".repeat(room % 2)}*/`;
}

async function notes(): Promise<NoteRow[]> {
  const { results } = await env.DB.prepare("SELECT seq, note FROM json_rows ORDER BY id").all<NoteRow>();
  return results;
}

async function balances(table: "ledger_balances" | "json_balances"): Promise<{ account: string; balance: number; applied: number }[]> {
  const { results } = await env.DB.prepare(`SELECT account, balance, applied FROM ${table} ORDER BY account`).all<{
    account: string;
    balance: number;
    applied: number;
  }>();
  return results;
}

beforeEach(async () => {
  await resetLedger();
  await env.DB.batch([
    env.DB.prepare("CREATE TABLE IF NOT EXISTS json_rows (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, note TEXT NOT NULL)"),
    env.DB.prepare("CREATE TABLE IF NOT EXISTS json_balances (account TEXT PRIMARY KEY, balance INTEGER NOT NULL, applied INTEGER NOT NULL)"),
    env.DB.prepare("DELETE FROM json_rows"),
    env.DB.prepare("DELETE FROM json_balances"),
  ]);
});

describe("one json_each statement per batch on real D1", () => {
  it("an upsert-by-key with GROUP BY gives the per-event statements' read model, one write per batch", async () => {
    const store = new D1CheckpointStore(env.DB);
    const counted = countD1(env.DB);
    const jsonRunner = new ProjectionRunner<LedgerEvent>({
      name: "json-ledger",
      store: new D1CheckpointStore(counted.db),
      batchSize: 100,
      readEvents: (after, limit) => readLedger(after, limit),
      project: (events) =>
        jsonRowStatements(counted.db, UPSERT_BALANCES, events.map((e) => ({ account: e.account, amount: e.amount }))),
    });
    await appendEvents(250);
    await ledgerRunner(store, 100).run();
    await jsonRunner.run();
    await appendEvents(70); // the second run updates existing accounts: the ON CONFLICT path
    await ledgerRunner(store, 100).run();
    await jsonRunner.run();

    const expected = await balances("ledger_balances");
    expect(expected).toHaveLength(5);
    expect(expected.reduce((sum, row) => sum + row.applied, 0)).toBe(320);
    expect(await balances("json_balances")).toEqual(expected);
    const batches = counted.calls.filter((call) => call.kind === "batch");
    expect(batches.map((call) => call.sql.length)).toEqual([2, 2, 2, 2]); // 250 + 70 events: 3 + 1 batches of write + checkpoint
    expect(batches.every((call) => call.sql.includes(UPSERT_BALANCES))).toBe(true);
    await expect(store.load("json-ledger")).resolves.toEqual({ position: 320, found: true });
  });

  it("needs something between FROM json_each(?1) and ON CONFLICT: WHERE true, or a GROUP BY", async () => {
    const rows = [
      { account: "a", amount: 1 },
      { account: "a", amount: 2 },
      { account: "b", amount: 5 },
    ];
    const upsert = "ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance, applied = applied + excluded.applied";
    const select = "INSERT INTO json_balances (account, balance, applied) SELECT value ->> 'account', ";
    const [bare] = jsonRowStatements(env.DB, `${select}value ->> 'amount', 1 FROM json_each(?1) ${upsert}`, rows);
    await expect(bare?.run()).rejects.toThrow(/near "DO": syntax error/);
    expect(await balances("json_balances")).toEqual([]);

    const [grouped] = jsonRowStatements(env.DB, `${select}SUM(value ->> 'amount'), COUNT(*) FROM json_each(?1) GROUP BY 1 ${upsert}`, rows);
    await grouped?.run();
    expect(await balances("json_balances")).toEqual([
      { account: "a", balance: 3, applied: 2 },
      { account: "b", balance: 5, applied: 1 },
    ]);
    // Without GROUP BY, each element is its own upsert: the same sums, one write per element.
    const [where] = jsonRowStatements(env.DB, `${select}value ->> 'amount', 1 FROM json_each(?1) WHERE true ${upsert}`, rows);
    await where?.run();
    expect(await balances("json_balances")).toEqual([
      { account: "a", balance: 6, applied: 4 },
      { account: "b", balance: 10, applied: 2 },
    ]);
  });

  it("no rows, no statement: nothing is prepared", async () => {
    const counting = countPrepares(env.DB);
    expect(jsonRowStatements(counting.db, INSERT_NOTES, [])).toEqual([]);
    expect(jsonRowChunks([])).toEqual([]);
    expect(counting.prepared).toEqual([]);
    const counted = countD1(env.DB);
    await new D1CheckpointStore(counted.db).commit("json", 1, jsonRowStatements(counted.db, INSERT_NOTES, []), { expected: null });
    expect(counted.calls.map((call) => call.sql.length)).toEqual([1]); // the checkpoint alone
    expect(await notes()).toEqual([]);
  });
});

describe("splitting", () => {
  it("splits into the fewest chunks of at most maxValueBytes bytes of UTF-8, in order", () => {
    const rows = noteRows(60);
    const limit = 300;
    const chunks = jsonRowChunks(rows, { maxValueBytes: limit });
    expect(chunks.length).toBeGreaterThan(5);
    expect(chunks.length).toBe(fewestChunks(rows, limit));
    for (const chunk of chunks) expect(bytesOf(chunk)).toBeLessThanOrEqual(limit);
    expect(chunks.some((chunk) => bytesOf(chunk) > chunk.length)).toBe(true); // counted in bytes, not UTF-16 units
    expect(chunks.flatMap((chunk) => JSON.parse(chunk) as NoteRow[])).toEqual(rows);
    // Greedy: no chunk could have taken the next chunk's first row.
    for (let i = 0; i + 1 < chunks.length; i++) {
      const [first] = JSON.parse(chunks[i + 1] ?? "[]") as NoteRow[];
      expect(bytesOf(chunks[i] ?? "") + 1 + bytesOf(JSON.stringify(first))).toBeGreaterThan(limit);
    }
  });

  it("fills a chunk to exactly maxValueBytes, and one byte less moves a row to the next", () => {
    const rows = Array.from({ length: 9 }, (_, seq) => ({ seq, note: "\u20ac".repeat(10) })); // 3 bytes a character
    const row = bytesOf(JSON.stringify(rows[0]));
    const three = 2 + 3 * row + 2;
    const exact = jsonRowChunks(rows, { maxValueBytes: three });
    expect(exact).toHaveLength(3);
    for (const chunk of exact) expect(bytesOf(chunk)).toBe(three);
    const less = jsonRowChunks(rows, { maxValueBytes: three - 1 });
    expect(less.map((chunk) => (JSON.parse(chunk) as unknown[]).length)).toEqual([2, 2, 2, 2, 1]);
    expect(jsonRowChunks(rows, { maxValueBytes: row + 2 })).toHaveLength(9); // one row per chunk still fits
  });

  it("applies every row exactly once, in order, atomically with the checkpoint inside store.commit", async () => {
    const rows = noteRows(60);
    const counted = countD1(env.DB);
    const store = new D1CheckpointStore(counted.db);
    const statements = jsonRowStatements(counted.db, INSERT_NOTES, rows, { maxValueBytes: 300 });
    expect(statements).toHaveLength(fewestChunks(rows, 300));
    await store.commit("json", 60, statements, { expected: null });
    expect(counted.calls.map((call) => [call.kind, call.sql.length])).toEqual([["batch", statements.length + 1]]);
    expect(await notes()).toEqual(rows);
    await expect(store.load("json")).resolves.toEqual({ position: 60, found: true });
  });

  it("a failing chunk rolls back the other chunks and the checkpoint", async () => {
    const rows: NoteRow[] = [...noteRows(59), { seq: 59, note: null }]; // NOT NULL fails in the last chunk
    const store = new D1CheckpointStore(env.DB);
    const statements = jsonRowStatements(env.DB, INSERT_NOTES, rows, { maxValueBytes: 300 });
    expect(statements.length).toBeGreaterThan(5);
    const error = await store.commit("json", 60, statements, { expected: null }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(D1OperationError);
    expect(String((error as Error).cause)).toMatch(/NOT NULL constraint failed: json_rows\.note/);
    expect(await notes()).toEqual([]);
    expect(await storedRows()).toEqual([]);
  });

  it("a Durable Object binds the same chunks with sql.exec inside its commit", async () => {
    const rows = noteRows(40);
    const chunks = jsonRowChunks(rows, { maxValueBytes: 250 });
    expect(chunks.length).toBe(fewestChunks(rows, 250));
    const stored = await inObject(freshObject(), async (store, storage) => {
      storage.sql.exec("CREATE TABLE json_rows (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, note TEXT NOT NULL)");
      await store.commit("json", 40, (sql) => {
        for (const json of chunks) sql.exec(INSERT_NOTES, json);
      });
      return { rows: storage.sql.exec<{ seq: number; note: string }>("SELECT seq, note FROM json_rows ORDER BY id").toArray(), at: await store.load("json") };
    });
    expect(stored.rows).toEqual(rows);
    expect(stored.at).toEqual({ position: 40, found: true });
  });
});

describe("payloads near D1's 2,000,000-byte value limit, on local D1", () => {
  /** `count` rows of about 1,000 bytes of JSON each (490 two-byte characters). */
  const bigRows = (count: number): NoteRow[] => Array.from({ length: count }, (_, seq) => ({ seq, note: "\u00fc".repeat(490) }));

  it("about 1.5 MB: one statement", async () => {
    const rows = bigRows(1500);
    const [chunk, ...others] = jsonRowChunks(rows);
    expect(others).toEqual([]);
    expect(bytesOf(chunk ?? "")).toBeGreaterThan(1_450_000);
    const counted = countD1(env.DB);
    const statements = jsonRowStatements(counted.db, INSERT_NOTES, rows);
    expect(statements).toHaveLength(1);
    await new D1CheckpointStore(counted.db).commit("big", 1500, statements, { expected: null });
    expect(counted.calls.map((call) => call.sql.length)).toEqual([2]);
    const totals = await env.DB.prepare("SELECT COUNT(*) AS n, SUM(length(note)) AS chars, MAX(seq) AS last FROM json_rows").first();
    expect(totals).toEqual({ n: 1500, chars: 1500 * 490, last: 1499 });
  });

  it("over 2 MB: two statements, each within the limit, both applied", async () => {
    const rows = bigRows(2600);
    const chunks = jsonRowChunks(rows);
    expect(chunks).toHaveLength(2);
    const sizes = chunks.map(bytesOf);
    expect(sizes[0] ?? 0).toBeLessThanOrEqual(D1_MAX_VALUE_BYTES);
    expect(sizes[0] ?? 0).toBeGreaterThan(D1_MAX_VALUE_BYTES - 1100); // greedy: full but for less than a row
    expect(sizes[1] ?? 0).toBeLessThanOrEqual(D1_MAX_VALUE_BYTES);
    expect(sizes.reduce((a, b) => a + b, 0)).toBeGreaterThan(2_500_000);
    const counted = countD1(env.DB);
    const statements = jsonRowStatements(counted.db, INSERT_NOTES, rows);
    expect(statements).toHaveLength(2);
    await new D1CheckpointStore(counted.db).commit("big", 2600, statements, { expected: null });
    expect(counted.calls.map((call) => call.sql.length)).toEqual([3]);
    const totals = await env.DB.prepare("SELECT COUNT(*) AS n, COUNT(DISTINCT seq) AS seqs, MIN(seq) AS first, MAX(seq) AS last FROM json_rows").first();
    expect(totals).toEqual({ n: 2600, seqs: 2600, first: 0, last: 2599 });
    expect((await notes()).map((row) => row.seq)).toEqual(rows.map((row) => row.seq));
  });
});

describe("D1's statement limit and SQLite's JSON depth, checked against local D1", () => {
  it("accepts SQL of exactly 100,000 bytes, which D1 runs, and refuses one byte more, which D1 refuses too", async () => {
    const longest = paddedSql(D1_MAX_STATEMENT_BYTES);
    expect(bytesOf(longest)).toBe(100_000);
    await env.DB.batch(jsonRowStatements(env.DB, longest, [{ seq: 1, note: "x" }]));
    expect(await notes()).toEqual([{ seq: 1, note: "x" }]);

    const over = paddedSql(D1_MAX_STATEMENT_BYTES + 1);
    expect(over.length).toBeLessThan(60_000); // too long in bytes, not in UTF-16 units
    expect(() => jsonRowStatements(env.DB, over, [{ seq: 2, note: "y" }])).toThrow(CheckpointRangeError);
    await expect(env.DB.prepare(over).bind("[]").run()).rejects.toThrow(/statement too long/);
  });

  it("accepts rows as deep as SQLite's JSON reads and refuses one level more", async () => {
    const nested = (levels: number): unknown => Array.from({ length: levels - 1 }).reduce<unknown>((inner) => [inner], []);
    const [deepest] = jsonRowChunks(any([nested(999)])); // 999 levels in the array of rows: 1,000
    const read = await env.DB.prepare("SELECT COUNT(*) AS n FROM json_each(?1)").bind(deepest).first();
    expect(read).toEqual({ n: 1 });
    await expect(env.DB.prepare("SELECT COUNT(*) AS n FROM json_each(?1)").bind(`[${deepest ?? ""}]`).first()).rejects.toThrow(/malformed JSON/);
    const error = (() => {
      try {
        return jsonRowChunks(any([nested(1000)]));
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(CheckpointRangeError);
    expect((error as CheckpointRangeError).argument).toBe(`rows[0]${"[0]".repeat(999)}`);
  });
});

describe("bad input: a typed error before anything is built, nothing written", () => {
  const sql = INSERT_NOTES;
  const row = { seq: 1, note: "ok" };
  const loneHigh = "\uD800";
  class Account {
    constructor(readonly seq: number) {}
  }
  const cycle: Record<string, unknown> = { seq: 1 };
  cycle.self = cycle;
  const symbolKeyed = { seq: 1, [Symbol("secret")]: 2 };
  // eslint-disable-next-line no-sparse-arrays -- a hole, on purpose
  const sparseRows = [row, , row];
  // eslint-disable-next-line no-sparse-arrays -- a hole, on purpose
  const sparseTags = { seq: 1, tags: [1, , 3] };

  type Case = readonly [label: string, kind: "type" | "range", argument: string, call: (db: D1Client) => D1PreparedStatement[]];
  const rowsCase = (label: string, kind: "type" | "range", argument: string, rows: unknown, options?: unknown): Case => [
    label,
    kind,
    argument,
    (db) => jsonRowStatements(db, sql, any(rows), any(options)),
  ];

  const cases: readonly Case[] = [
    ["db is null", "type", "db", () => jsonRowStatements(any(null), sql, [row])],
    ["db has no prepare", "type", "db", () => jsonRowStatements(any({ batch: () => [] }), sql, [row])],
    ["sql is a number", "type", "sql", (db) => jsonRowStatements(db, any(42), [row])],
    ["sql is empty", "range", "sql", (db) => jsonRowStatements(db, "", [row])],
    ["sql is blank", "range", "sql", (db) => jsonRowStatements(db, "  \n ", [row])],
    ["sql is 100,001 bytes of UTF-8", "range", "sql", (db) => jsonRowStatements(db, paddedSql(D1_MAX_STATEMENT_BYTES + 1), [row])],
    rowsCase("rows is a string", "type", "rows", "[]"),
    rowsCase("rows is null", "type", "rows", null),
    rowsCase("rows is an object", "type", "rows", { 0: row, length: 1 }),
    rowsCase("rows has a hole", "type", "rows[1]", sparseRows),
    rowsCase("a row is a number", "type", "rows[0]", [1]),
    rowsCase("a row is null", "type", "rows[1]", [row, null]),
    rowsCase("a row is a string", "type", "rows[0]", ["{}"]),
    rowsCase("a row is a Date", "type", "rows[0]", [new Date(0)]),
    rowsCase("a row is a Map", "type", "rows[0]", [new Map([["seq", 1]])]),
    rowsCase("a row is a class instance", "type", "rows[0]", [new Account(1)]),
    rowsCase("a value is NaN", "range", "rows[3].amount", [row, row, row, { account: "a", amount: Number.NaN }]),
    rowsCase("a value is Infinity", "range", "rows[0].amount", [{ amount: Number.POSITIVE_INFINITY }]),
    rowsCase("a value is -Infinity", "range", "rows[0][1]", [["a", Number.NEGATIVE_INFINITY]]),
    rowsCase("a value is 2^53", "range", "rows[0].amount", [{ amount: 2 ** 53 }]),
    rowsCase("a value is -(2^53)", "range", "rows[0].amount", [{ amount: -(2 ** 53) }]),
    rowsCase("a value is 1e21", "range", "rows[0].amount", [{ amount: 1e21 }]),
    rowsCase("a value is undefined", "type", "rows[0].note", [{ seq: 1, note: undefined }]),
    rowsCase("an array element is undefined", "type", "rows[0][1]", [[1, undefined]]),
    rowsCase("a value is a bigint", "type", "rows[0].seq", [{ seq: 1n }]),
    rowsCase("a value is a function", "type", "rows[0].toJSON", [{ seq: 1, toJSON: () => "x" }]),
    rowsCase("a value is a symbol", "type", "rows[0].note", [{ seq: 1, note: Symbol("n") }]),
    rowsCase("a value is a Date", "type", "rows[0].at", [{ seq: 1, at: new Date(0) }]),
    rowsCase("a value is a boxed number", "type", "rows[0].seq", [{ seq: Object(1) as unknown }]),
    rowsCase("a key is a symbol", "type", "rows[0]", [symbolKeyed]),
    rowsCase("a nested array has a hole", "type", "rows[0].tags[1]", [sparseTags]),
    rowsCase("a deep value is NaN", "range", 'rows[0].a["b c"][1].d', [{ a: { "b c": [{ d: 1 }, { d: Number.NaN }] } }]),
    rowsCase("a string has a lone surrogate", "range", "rows[0].note", [{ seq: 1, note: `a${loneHigh}b` }]),
    rowsCase("a key has a lone surrogate", "range", `rows[0][${JSON.stringify(loneHigh)}]`, [{ [loneHigh]: 1 }]),
    rowsCase("a row contains itself", "type", "rows[0].self", [cycle]),
    rowsCase("a row is over maxValueBytes", "range", "rows[2]", [row, row, { seq: 3, note: "\u00e9".repeat(600) }], { maxValueBytes: 1000 }),
    rowsCase("a row is over D1's value limit", "range", "rows[1]", [row, { seq: 2, note: "x".repeat(D1_MAX_VALUE_BYTES) }]),
    rowsCase("options is a string", "type", "options", [row], "small"),
    rowsCase("maxValueBytes is 0", "range", "options.maxValueBytes", [row], { maxValueBytes: 0 }),
    rowsCase("maxValueBytes is over D1's limit", "range", "options.maxValueBytes", [row], { maxValueBytes: D1_MAX_VALUE_BYTES + 1 }),
    rowsCase("maxValueBytes is fractional", "range", "options.maxValueBytes", [row], { maxValueBytes: 100.5 }),
    rowsCase("maxValueBytes is a string", "type", "options.maxValueBytes", [row], { maxValueBytes: "100" }),
  ];

  it.each(cases)("%s", async (_label, kind, argument, call) => {
    const counted = countD1(env.DB);
    const counting = countPrepares(counted.db);
    const store = new D1CheckpointStore(counted.db);
    const error = await (async () => store.commit("json", 1, call(counting.db), { expected: null }))().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(kind === "type" ? CheckpointTypeError : CheckpointRangeError);
    expect(error).toBeInstanceOf(kind === "type" ? TypeError : RangeError);
    expect(error).toMatchObject({ operation: "jsonRows", checkpoint: undefined, argument });
    expect((error as Error).message.startsWith(`jsonRows: ${argument} `)).toBe(true);
    expect(counting.prepared).toEqual([]);
    expect(counted.calls).toEqual([]);
    expect(await notes()).toEqual([]);
    expect(await storedRows()).toEqual([]);
  });

  it("says what JSON would have done", () => {
    const messageOf = (rows: unknown, options?: unknown): string => {
      try {
        jsonRowChunks(any(rows), any(options));
      } catch (error) {
        return (error as Error).message;
      }
      return "no error";
    };
    expect(messageOf([{ amount: Number.NaN }])).toBe("jsonRows: rows[0].amount must be a finite number, got NaN (JSON would write null instead)");
    expect(messageOf([{ note: undefined }])).toMatch(/rows\[0\]\.note must be a JSON value, got undefined \(JSON would drop it\)/);
    expect(messageOf([[undefined]])).toMatch(/rows\[0\]\[0\] must be a JSON value, got undefined \(JSON would write null instead\)/);
    expect(messageOf([sparseTags])).toMatch(/rows\[0\]\.tags\[1\] is a hole/);
    expect(messageOf([{ at: new Date(0) }])).toMatch(/rows\[0\]\.at must be a plain object or an array, got Date/);
    expect(messageOf([{ amount: 2 ** 53 }])).toMatch(/rounded/);
    expect(messageOf([cycle])).toMatch(/cycle/);
    expect(messageOf([{ note: "\u00e9".repeat(600) }], { maxValueBytes: 1000 })).toBe(
      "jsonRows: rows[0] is 1211 bytes of JSON, 1213 in an array of its own: over options.maxValueBytes of 1000 bytes (split the row, or keep large values out of it)",
    );
  });

  it("jsonRowChunks checks the same way; null-prototype objects and shared (not cyclic) values are fine", () => {
    expect(() => jsonRowChunks(any([{ amount: Number.NaN }]))).toThrow(CheckpointRangeError);
    expect(() => jsonRowChunks(any("rows"))).toThrow(CheckpointTypeError);
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { seq: 1, note: "x" });
    const shared = { k: 1 };
    expect(jsonRowChunks(any([bare, [1, "two", true, null, { nested: [0.5] }], { a: shared, b: [shared] }, { c: shared }]))).toEqual([
      '[{"seq":1,"note":"x"},[1,"two",true,null,{"nested":[0.5]}],{"a":{"k":1},"b":[{"k":1}]},{"c":{"k":1}}]',
    ]);
  });
});
