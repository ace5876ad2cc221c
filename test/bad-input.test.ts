import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { countD1 } from "../src/testing/intercept.js";
import {
  CheckpointRangeError,
  CheckpointTypeError,
  D1CheckpointStore,
  MemoryCheckpointStore,
  ProjectionRunner,
  type CheckpointStore,
} from "../src/index.js";
import { clearCheckpoints, collect, storedRows } from "./support/helpers.js";
import { objectStore } from "./support/in-object.js";

const loneHigh = "\uD800";
const loneLow = "\uDFFF";
const ascii1025 = "x".repeat(1025);
const emoji257 = "\u{1F600}".repeat(257); // 1,028 bytes of UTF-8 in 514 UTF-16 units

/** A value the type checker would reject, as a plain JavaScript caller passes it. */
function any(value: unknown): never {
  return value as never;
}

type Case<Store> = readonly [label: string, kind: "type" | "range", argument: string, call: (store: Store) => unknown];

/** Bad input to the methods every store has. */
const storeCases: readonly Case<CheckpointStore>[] = [
  ["save: name is a number", "type", "name", (s) => s.save(any(42), 1)],
  ["save: name is undefined", "type", "name", (s) => s.save(any(undefined), 1)],
  ["save: name is null", "type", "name", (s) => s.save(any(null), 1)],
  ["save: name is an object", "type", "name", (s) => s.save(any({ name: "a" }), 1)],
  ["save: name is empty", "range", "name", (s) => s.save("", 1)],
  ["save: name has a lone high surrogate", "range", "name", (s) => s.save(`a${loneHigh}`, 1)],
  ["save: name is 1,025 bytes", "range", "name", (s) => s.save(ascii1025, 1)],
  ["save: name is 1,028 bytes of emoji", "range", "name", (s) => s.save(emoji257, 1)],
  ["save: position is a string", "type", "position", (s) => s.save("a", any("1"))],
  ["save: position is a bigint", "type", "position", (s) => s.save("a", any(1n))],
  ["save: position is undefined", "type", "position", (s) => s.save("a", any(undefined))],
  ["save: position is null", "type", "position", (s) => s.save("a", any(null))],
  ["save: position is NaN", "range", "position", (s) => s.save("a", Number.NaN)],
  ["save: position is Infinity", "range", "position", (s) => s.save("a", Number.POSITIVE_INFINITY)],
  ["save: position is negative", "range", "position", (s) => s.save("a", -1)],
  ["save: position is fractional", "range", "position", (s) => s.save("a", 1.5)],
  ["save: position is 2^53", "range", "position", (s) => s.save("a", 2 ** 53)],
  ["save: options is a string", "type", "options", (s) => s.save("a", 1, any("fast"))],
  ["save: signal is not an AbortSignal", "type", "options.signal", (s) => s.save("a", 1, any({ signal: {} }))],
  ["save: expected is negative", "range", "options.expected", (s) => s.save("a", 1, { expected: -1 })],
  ["save: expected is a string", "type", "options.expected", (s) => s.save("a", 1, any({ expected: "0" }))],
  ["save: expected is fractional", "range", "options.expected", (s) => s.save("a", 1, { expected: 0.5 })],
  ["save: expected is a bigint", "type", "options.expected", (s) => s.save("a", 1, any({ expected: 0n }))],
  ["load: name is a number", "type", "name", (s) => s.load(any(1))],
  ["load: options is an array", "type", "options", (s) => s.load("a", any([]))],
  ["load: signal is a string", "type", "options.signal", (s) => s.load("a", any({ signal: "yes" }))],
  ["reset: name is empty", "range", "name", (s) => s.reset("")],
  ["reset: name has a lone low surrogate", "range", "name", (s) => s.reset(loneLow)],
  ["names: pageSize is 0", "range", "options.pageSize", (s) => collect(s.names({ pageSize: 0 }))],
  ["names: pageSize is above 10,000", "range", "options.pageSize", (s) => collect(s.names({ pageSize: 10_001 }))],
  ["names: pageSize is fractional", "range", "options.pageSize", (s) => collect(s.names({ pageSize: 1.5 }))],
  ["names: pageSize is a string", "type", "options.pageSize", (s) => collect(s.names(any({ pageSize: "10" })))],
  ["names: after is a number", "type", "options.after", (s) => collect(s.names(any({ after: 5 })))],
  ["names: after has a lone surrogate", "range", "options.after", (s) => collect(s.names({ after: loneHigh }))],
  ["names: prefix is null", "type", "options.prefix", (s) => collect(s.names(any({ prefix: null })))],
  ["names: prefix is 2,000 bytes", "range", "options.prefix", (s) => collect(s.names({ prefix: "p".repeat(2000) }))],
  ["names: signal is a number", "type", "options.signal", (s) => collect(s.names(any({ signal: 1 })))],
  ["entries: pageSize is negative", "range", "options.pageSize", (s) => collect(s.entries({ pageSize: -1 }))],
  ["entries: options is a number", "type", "options", (s) => collect(s.entries(any(3)))],
];

/** Bad input to the D1 store's own methods. */
const d1Cases: readonly Case<D1CheckpointStore>[] = [
  ["commit: statements is not an array", "type", "statements", (s) => s.commit("a", 1, any("INSERT"))],
  ["commit: a statement is a plain object", "type", "statements[0]", (s) => s.commit("a", 1, any([{}]))],
  ["commit: a statement is null", "type", "statements[1]", (s) => s.commit("a", 1, any([env.DB.prepare("SELECT 1"), null]))],
  ["commit: position is negative", "range", "position", (s) => s.commit("a", -1, [])],
  ["commit: expected is NaN", "range", "options.expected", (s) => s.commit("a", 1, [], { expected: Number.NaN })],
  ["commit: name is empty", "range", "name", (s) => s.commit("", 1, [])],
  ["saveStatement: position is fractional", "range", "position", (s) => s.saveStatement("a", 1.5)],
  ["saveStatement: name is a number", "type", "name", (s) => s.saveStatement(any(1), 1)],
  ["saveStatement: expected is Infinity", "range", "options.expected", (s) => s.saveStatement("a", 1, { expected: Infinity })],
  // eslint-disable-next-line no-sparse-arrays -- a hole is the bad input under test
  ["commit: statements has a hole", "type", "statements[0]", (s) => s.commit("a", 1, any([, env.DB.prepare("SELECT 1")]))],
  ["commit: statements is new Array(2)", "type", "statements[0]", (s) => s.commit("a", 1, any(new Array(2)))],
  [
    "commit: a statement merely has bind and run",
    "type",
    "statements[0]",
    (s) => s.commit("a", 1, any([{ bind: () => undefined, run: () => Promise.resolve({}), all: () => Promise.resolve({}) }])),
  ],
  ["commitAndQuery: query is a plain object", "type", "query", (s) => s.commitAndQuery("a", 1, [], any({ all: () => [] }))],
  ["loadAndQuery: query is not a function", "type", "query", (s) => s.loadAndQuery("a", any("SELECT 1"))],
];

const runnerBase = {
  name: "ledger",
  store: new D1CheckpointStore(env.DB),
  readEvents: () => Promise.resolve([]),
  project: () => [],
};

const configurationCases: readonly (readonly [string, "type" | "range", string, () => unknown])[] = [
  ["db is null", "type", "db", () => new D1CheckpointStore(any(null))],
  ["db is a plain object", "type", "db", () => new D1CheckpointStore(any({}))],
  ["retry.attempts is 0", "range", "options.retry.attempts", () => new D1CheckpointStore(env.DB, { retry: { attempts: 0 } })],
  ["retry.attempts is a string", "type", "options.retry.attempts", () => new D1CheckpointStore(env.DB, { retry: any({ attempts: "3" }) })],
  ["retry.baseDelayMs is negative", "range", "options.retry.baseDelayMs", () => new D1CheckpointStore(env.DB, { retry: { baseDelayMs: -5 } })],
  ["retry.isTransient is not a function", "type", "options.retry.isTransient", () => new D1CheckpointStore(env.DB, { retry: any({ isTransient: true }) })],
  ["retry is a string", "type", "options.retry", () => new D1CheckpointStore(env.DB, { retry: any("yes") })],
  ["migrate is a string", "type", "options.migrate", () => D1CheckpointStore.create(env.DB, { migrate: any("no") })],
  ["migrate is 0", "type", "options.migrate", () => D1CheckpointStore.create(env.DB, { migrate: any(0) })],
  ["runner: options is undefined", "type", "options", () => new ProjectionRunner(any(undefined))],
  ["runner: options is a string", "type", "options", () => new ProjectionRunner(any("balances"))],
  ["runner: store is missing", "type", "options.store", () => new ProjectionRunner(any({ ...runnerBase, store: undefined }))],
  ["runner: store has no commit", "type", "options.store", () => new ProjectionRunner(any({ ...runnerBase, store: { load: () => 0 } }))],
  ["runner: both event sources", "type", "options.readEvents", () => new ProjectionRunner(any({ ...runnerBase, eventsQuery: () => env.DB.prepare("SELECT 1") }))],
  ["runner: no event source", "type", "options.readEvents", () => new ProjectionRunner(any({ ...runnerBase, readEvents: undefined }))],
  [
    "runner: eventsQuery on a store that cannot pipeline",
    "type",
    "options.store",
    () => new ProjectionRunner(any({ ...runnerBase, readEvents: undefined, eventsQuery: () => env.DB.prepare("SELECT 1"), store: new MemoryCheckpointStore() })),
  ],
];

/** What `call` throws or rejects with. */
async function failure(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  return undefined;
}

function errorClass(kind: "type" | "range"): typeof CheckpointTypeError | typeof CheckpointRangeError {
  return kind === "type" ? CheckpointTypeError : CheckpointRangeError;
}

describe("bad input is rejected before any query, and nothing is written", () => {
  beforeEach(async () => {
    await clearCheckpoints();
    await env.DB.prepare("INSERT INTO checkpoints (name, position) VALUES ('keep', 7)").run();
  });

  it.each([...storeCases, ...d1Cases])("%s → %s error", async (_, kind, argument, call) => {
    const counted = countD1(env.DB);
    const store = new D1CheckpointStore(counted.db);
    const error = await failure(() => call(store));
    expect(error).toBeInstanceOf(errorClass(kind));
    expect(error).toBeInstanceOf(kind === "type" ? TypeError : RangeError);
    expect(error).toMatchObject({ argument });
    expect((error as Error).message).toContain(argument);
    expect(counted.calls).toEqual([]);
    expect(await storedRows()).toEqual([{ name: "keep", position: 7 }]);
  });

  it.each(configurationCases)("configuration: %s → %s error", async (_, kind, argument, build) => {
    const before = await storedRows();
    const error = await failure(build);
    expect(await storedRows()).toEqual(before);
    expect(error).toBeInstanceOf(errorClass(kind));
    expect(error).toMatchObject({ argument, operation: "configure" });
  });

  it("names the checkpoint in the error when the name itself is valid", async () => {
    const error = await new D1CheckpointStore(env.DB).save("orders", -1).catch((e: unknown) => e);
    expect(error).toMatchObject({ operation: "save", checkpoint: "orders", argument: "position" });
    expect((error as Error).message).toBe(
      'save("orders"): position must be a non-negative safe integer (0 to 9007199254740991), got -1',
    );
  });

  it("accepts the limits themselves: 1,024 bytes of name, 0 and 2^53 - 1", async () => {
    const store = new D1CheckpointStore(env.DB);
    const ascii = "x".repeat(1024);
    const emoji = "\u{1F600}".repeat(256);
    await store.save(ascii, 0);
    await store.save(emoji, Number.MAX_SAFE_INTEGER);
    await expect(store.load(ascii)).resolves.toEqual({ position: 0, found: true });
    await expect(store.load(emoji)).resolves.toEqual({ position: Number.MAX_SAFE_INTEGER, found: true });
  });

  it.each([
    ["memory", () => new MemoryCheckpointStore()],
    ["Durable Object", () => objectStore()],
  ] as const)("the %s store rejects the same input with the same errors", async (_, make) => {
    const store: CheckpointStore = make();
    for (const [label, kind, argument, call] of storeCases) {
      const error = await failure(() => call(store));
      expect(error, label).toBeInstanceOf(errorClass(kind));
      expect(error, label).toMatchObject({ argument });
    }
  });
});
