import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { countD1 } from "../src/testing/intercept.js";
import { injectFaults } from "../src/testing/faults.js";
import {
  CheckpointTypeError,
  D1CheckpointStore,
  jsonRowChunks,
  MemoryCheckpointStore,
  migrate,
  ProjectionGroup,
  ProjectionRunner,
  waitForCheckpoint,
  type PositionedEvent,
} from "../src/index.js";
import { freshObject, inObject } from "./support/in-object.js";

// Every options object of the package refuses a key it does not know, with a
// CheckpointTypeError naming the key, before any query: a misspelt option
// (`retired` for `retire`, `budgte`, `batchsize`) must never silently change
// what a call does.

/** A value the type checker would reject, as a plain JavaScript caller passes it. */
function any(value: unknown): never {
  return value as never;
}

const noop = (): D1PreparedStatement[] => [];
const query = (after: number, limit: number): D1PreparedStatement => env.DB.prepare("SELECT ?1 AS position LIMIT ?2").bind(after, limit);

type Call = (store: D1CheckpointStore) => unknown;

/** [label, the misspelt key, the call]: each with a counted store, so that no D1 call may be made. */
const d1Cases: readonly (readonly [string, string, Call])[] = [
  ["startRebuild retired", "retired", (s) => s.startRebuild("p", 2, any({ tables: { p: "p_v2" }, retired: "drop" }))],
  ["startRebuild retire", "retire", (s) => s.startRebuild("p", 2, any({ tables: { p: "p_v2" }, retire: "drop" }))],
  ["startRebuild liveTable", "liveTable", (s) => s.startRebuild("p", 2, any({ tables: { p: "p_v2" }, liveTable: { p: "p" } }))],
  ["startRebuild creates", "creates", (s) => s.startRebuild("p", 2, any({ tables: { p: "p_v2" }, creates: [] }))],
  ["switchVersion retired", "retired", (s) => s.switchVersion("p", 2, any({ retired: "drop" }))],
  ["dropVersion force", "force", (s) => s.dropVersion("p", 2, any({ force: true }))],
  ["versions signl", "signl", (s) => s.versions("p", any({ signl: undefined }))],
  ["save expectd", "expectd", (s) => s.save("p", 1, any({ expectd: 0 }))],
  ["load signl", "signl", (s) => s.load("p", any({ signl: undefined }))],
  ["reset budgte", "budgte", (s) => s.reset("p", any({ budgte: 1 }))],
  ["commit parkd", "parkd", (s) => s.commit("p", 1, [], any({ parkd: [] }))],
  ["saveStatement expect", "expect", (s) => s.saveStatement("p", 1, any({ expect: 0 }))],
  ["replayParked fense", "fense", (s) => s.replayParked("p", 1, [], any({ fense: undefined }))],
  ["names pageSze", "pageSze", (s) => s.names(any({ pageSze: 10 })).next()],
  ["entries prefx", "prefx", (s) => s.entries(any({ prefx: "a" })).next()],
  ["status newst", "newst", (s) => s.status("p", any({ newst: 10 }))],
  ["statuses eventTime", "eventTime", (s) => s.statuses(any({ eventTime: { table: "e", time: "t" } })).next()],
  ["parked pagesize", "pagesize", (s) => s.parked("p", any({ pagesize: 10 })).next()],
  ["waitFor timeout", "timeout", (s) => s.waitFor("p", 1, any({ timeout: 10 }))],
  ["loadAndQuery leases", "leases", (s) => s.loadAndQuery("p", (after) => query(after, 1), any({ leases: true }))],
  ["commitAndQuery parkd", "parkd", (s) => s.commitAndQuery("p", 1, [], query(1, 1), any({ parkd: [] }))],
  ["releaseLease dorp", "dorp", (s) => s.releaseLease("p", { holder: "h", ttlMs: 1000 }, undefined, any({ dorp: true }))],
  ["loadMany signl", "signl", (s) => s.loadMany(["p"], any({ signl: undefined }))],
  ["commitMany budgte", "budgte", (s) => s.commitMany([{ name: "p", position: 1, writes: [] }], any({ budgte: 1 }))],
  ["loadManyAndQuery leese", "leese", (s) => s.loadManyAndQuery(["p"], (after) => query(after, 1), any({ leese: undefined }))],
  ["a group commit's part expectd", "expectd", (s) => s.commitMany([any({ name: "p", position: 1, writes: [], expectd: 0 })])],
  ["a commit's fence stat", "stat", (s) => s.commit("p", 1, [], any({ fence: { name: "p", version: 1, stat: "live" } }))],
];

describe("every options object refuses a key it does not know, before any query", () => {
  it.each(d1Cases)("D1CheckpointStore: %s", async (_label, key, call) => {
    const counted = countD1(env.DB);
    const store = new D1CheckpointStore(counted.db);
    const error = await Promise.resolve()
      .then(() => call(store))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointTypeError);
    expect((error as Error).message).toContain(`unknown key ${JSON.stringify(key)}`);
    expect(counted.calls).toHaveLength(0);
  });

  it("runner and group: constructors and run options", async () => {
    const counted = countD1(env.DB);
    const store = new D1CheckpointStore(counted.db);
    const base = { name: "p", store, eventsQuery: query, project: noop };
    for (const [key, options] of [
      ["batchsize", { ...base, batchsize: 10 }],
      ["onErorr", { ...base, onErorr: () => "skip" }],
      ["leases", { ...base, leases: true }],
      ["verison", { ...base, verison: 2 }],
    ] as const) {
      expect(() => new ProjectionRunner<PositionedEvent>(any(options)), key).toThrow(new RegExp(`unknown key "${key}"`));
    }
    const runner = new ProjectionRunner<PositionedEvent>(base);
    for (const key of ["budgte", "maxBatch", "signl"]) {
      const error = await runner.run(any({ [key]: 1 })).catch((e: unknown) => e);
      expect(error, key).toBeInstanceOf(CheckpointTypeError);
      expect((error as Error).message).toContain(`unknown key "${key}"`);
    }
    expect(await runner.replay(1, any({ fence: undefined })).catch((e: unknown) => e)).toBeInstanceOf(CheckpointTypeError);
    const group = { name: "g", store, eventsQuery: query, projections: [{ name: "p", project: noop }] };
    expect(() => new ProjectionGroup<PositionedEvent>(any({ ...group, batchsize: 10 }))).toThrow(/unknown key "batchsize"/);
    expect(() => new ProjectionGroup<PositionedEvent>(any({ ...group, projections: [{ name: "p", project: noop, verison: 2 }] }))).toThrow(/unknown key "verison"/);
    expect(await new ProjectionGroup<PositionedEvent>(group).run(any({ budgte: 50 })).catch((e: unknown) => e)).toBeInstanceOf(CheckpointTypeError);
    expect(counted.calls).toHaveLength(0);
  });

  it("store construction, migrate, retry, set-based writes, waitForCheckpoint and fault rules", async () => {
    const counted = countD1(env.DB);
    expect(() => new D1CheckpointStore(counted.db, any({ retries: false }))).toThrow(/unknown key "retries"/);
    expect(() => new D1CheckpointStore(counted.db, any({ retry: { attempt: 3 } }))).toThrow(/unknown key "attempt"/);
    expect(await D1CheckpointStore.create(counted.db, any({ migrates: false })).catch((e: unknown) => e)).toBeInstanceOf(CheckpointTypeError);
    expect(await migrate(counted.db, any({ retries: false })).catch((e: unknown) => e)).toBeInstanceOf(CheckpointTypeError);
    expect(() => jsonRowChunks([{ a: 1 }], any({ maxBytes: 10 }))).toThrow(/unknown key "maxBytes"/);
    const memory = new MemoryCheckpointStore();
    expect(await memory.save("p", 1, any({ expectd: 0 })).catch((e: unknown) => e)).toBeInstanceOf(CheckpointTypeError);
    expect(await waitForCheckpoint(memory, "p", 1, any({ timeout: 0 })).catch((e: unknown) => e)).toBeInstanceOf(CheckpointTypeError);
    expect(await memory.load("p")).toEqual({ position: 0, found: false });
    const faulty = injectFaults(counted.db);
    expect(() => { faulty.inject(any({ timming: "after" })); }).toThrow(/unknown key "timming"/);
    expect(counted.calls).toHaveLength(0);
  });

  it("the Durable Object store", async () => {
    const stub = freshObject();
    const outcomes = await inObject(stub, async (store) => {
      const errors = await Promise.all([
        store.save("p", 1, any({ expectd: 0 })).catch((e: unknown) => e),
        store.commit("p", 1, () => undefined, any({ parkd: [] })).catch((e: unknown) => e),
        store.switchVersion("p", 2, any({ retired: "drop" })).catch((e: unknown) => e),
        store.startRebuild("p", 2, any({ tables: { p: "p_v2" }, creates: () => undefined })).catch((e: unknown) => e),
      ]);
      let sync: unknown;
      try {
        store.commitSync("p", 1, () => undefined, any({ signal: undefined }));
      } catch (error) {
        sync = error;
      }
      return { errors: [...errors, sync].map((e) => e instanceof CheckpointTypeError), saved: await store.load("p") };
    });
    expect(outcomes).toEqual({ errors: [true, true, true, true, true], saved: { position: 0, found: false } });
  });
});
