import { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { D1CheckpointStore, MemoryCheckpointStore } from "../../src/index.js";

// Users who test from plain Node get a D1 binding from Miniflare; the store
// must work through that proxy exactly as inside a Worker.
describe("from plain Node through Miniflare's getD1Database()", () => {
  let mf: Miniflare;
  let db: Awaited<ReturnType<Miniflare["getD1Database"]>>;

  beforeAll(async () => {
    mf = new Miniflare({
      modules: true,
      script: "export default { fetch() { return new Response('ok'); } }",
      compatibilityDate: "2026-04-20",
      d1Databases: ["DB"],
      cf: false,
    });
    db = await mf.getD1Database("DB");
  });

  afterAll(async () => {
    await mf.dispose();
  });

  it("migrates, saves, loads, lists, commits and resets", async () => {
    const store = await D1CheckpointStore.create(db);
    await store.save("orders", 10);
    await store.save("invoices", 3, { expected: null });
    await expect(store.load("orders")).resolves.toEqual({ position: 10, found: true });
    await store.commit("orders", 11, [], { expected: 10 });
    await expect(store.save("orders", 12, { expected: 10 })).rejects.toMatchObject({
      name: "CheckpointConflictError",
      expected: 10,
    });
    const entries = [];
    for await (const entry of store.entries({ pageSize: 1 })) entries.push(entry);
    expect(entries).toEqual([
      { name: "invoices", position: 3 },
      { name: "orders", position: 11 },
    ]);
    await store.reset("orders");
    await expect(store.load("orders")).resolves.toEqual({ position: 0, found: false });
  });

  it("lists names in the same order as the memory store", async () => {
    const store = await D1CheckpointStore.create(db);
    const memory = new MemoryCheckpointStore();
    const names = ["\u{1F600}", "\uFF5E", "b", "a", "é", "a\u0000b"];
    for (const name of names) {
      await store.save(name, 1);
      await memory.save(name, 1);
    }
    const fromD1: string[] = [];
    for await (const name of store.names({ pageSize: 2 })) fromD1.push(name);
    const fromMemory: string[] = [];
    for await (const name of memory.names({ pageSize: 2 })) fromMemory.push(name);
    expect(fromD1.filter((name) => names.includes(name))).toEqual(fromMemory);
  });
});
