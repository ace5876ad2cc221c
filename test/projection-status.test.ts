import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { CheckpointRangeError, CheckpointTypeError, CorruptCheckpointError, D1CheckpointStore } from "../src/index.js";
import { countD1 } from "../src/testing.js";
import { clearCheckpoints, collect } from "./support/helpers.js";

// Status and lag: position, found, lag behind a newest position (a number or
// a query riding in the same round trip), when the checkpoint last moved
// (kept by triggers, whoever writes the checkpoint), parked events.

beforeEach(async () => {
  await clearCheckpoints();
  await env.DB.batch([
    env.DB.prepare("DELETE FROM parked_events"),
    env.DB.prepare("DELETE FROM checkpoint_moves"),
    env.DB.prepare("CREATE TABLE IF NOT EXISTS status_events (position INTEGER PRIMARY KEY)"),
    env.DB.prepare("DELETE FROM status_events"),
  ]);
});

/** Pretends the checkpoint of `name` last moved an hour ago. */
async function movedAnHourAgo(name: string): Promise<number> {
  const then = Date.now() - 3_600_000;
  await env.DB.prepare("UPDATE checkpoint_moves SET moved_at = ?2 WHERE name = ?1").bind(name, then).run();
  return then;
}

describe("status", () => {
  it("of a projection without a checkpoint", async () => {
    await expect(new D1CheckpointStore(env.DB).status("nothing", { newest: 7 })).resolves.toEqual({
      name: "nothing",
      found: false,
      position: 0,
      lag: 7,
      movedAt: undefined,
      sinceMovedMs: undefined,
      parked: 0,
    });
  });

  it("reports position, lag, parked events and when the checkpoint last moved", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.commit("balances", 40, [], { parked: [{ position: 12, error: "bad" }, { position: 30, error: "worse" }] });
    const status = await store.status("balances", { newest: 55 });
    expect(status).toMatchObject({ name: "balances", found: true, position: 40, lag: 15, parked: 2 });
    expect(Math.abs((status.movedAt?.getTime() ?? 0) - Date.now())).toBeLessThan(60_000);
    expect(status.sinceMovedMs).toBeGreaterThanOrEqual(0);
    expect((await store.status("balances")).lag).toBeUndefined();
    expect((await store.status("balances", { newest: 10 })).lag).toBe(0); // never negative
  });

  it("time since the checkpoint moved: saving the same position is not a move, a new position is", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.save("balances", 5);
    const then = await movedAnHourAgo("balances");
    await store.save("balances", 5);
    const still = await store.status("balances");
    expect(still.movedAt?.getTime()).toBe(then);
    expect(still.sinceMovedMs).toBeGreaterThanOrEqual(3_600_000);
    await store.save("balances", 6);
    const moved = await store.status("balances");
    expect(moved.movedAt?.getTime()).toBeGreaterThan(then);
    expect(moved.sinceMovedMs).toBeLessThan(60_000);
  });

  it("another tool's writes (the Go store's upsert) are timed too, and a reset clears the time", async () => {
    await env.DB.prepare("INSERT INTO checkpoints (name, position) VALUES ('go', 3) ON CONFLICT (name) DO UPDATE SET position = excluded.position").run();
    const store = new D1CheckpointStore(env.DB);
    expect((await store.status("go")).movedAt).toBeInstanceOf(Date);
    await store.reset("go");
    await expect(store.status("go")).resolves.toMatchObject({ found: false, movedAt: undefined });
    const { results } = await env.DB.prepare("SELECT name FROM checkpoint_moves").all();
    expect(results).toEqual([]);
  });

  it("a newest query rides in the same round trip", async () => {
    await env.DB.prepare("INSERT INTO status_events (position) VALUES (1), (2), (9)").run();
    const store = new D1CheckpointStore(env.DB);
    await store.save("balances", 2);
    const counted = countD1(env.DB);
    const status = await new D1CheckpointStore(counted.db).status("balances", {
      newest: counted.db.prepare("SELECT MAX(position) FROM status_events"),
    });
    expect(status.lag).toBe(7);
    expect(counted.calls.map((c) => c.kind)).toEqual(["batch"]);
    await env.DB.prepare("DELETE FROM status_events").run();
    await expect(store.status("balances", { newest: env.DB.prepare("SELECT MAX(position) FROM status_events") })).resolves.toMatchObject({
      lag: 0, // an empty log: newest is 0
    });
  });

  it("bad options are input errors before any query", async () => {
    const counted = countD1(env.DB);
    const store = new D1CheckpointStore(counted.db);
    await expect(store.status("a", { newest: -1 })).rejects.toBeInstanceOf(CheckpointRangeError);
    await expect(store.status("a", { newest: "9" as never })).rejects.toBeInstanceOf(CheckpointTypeError);
    await expect(store.status("")).rejects.toBeInstanceOf(CheckpointRangeError);
    expect(() => store.statuses({ pageSize: 0 })).toThrow(CheckpointRangeError);
    expect(counted.calls).toEqual([]);
  });
});

describe("statuses", () => {
  it("lists every checkpoint's status in name order, page by page", async () => {
    const store = new D1CheckpointStore(env.DB);
    for (const [name, position] of [["c", 3], ["a", 1], ["b", 2]] as const) await store.save(name, position);
    await store.commit("b", 4, [], { parked: [{ position: 3, error: "x" }] });
    const counted = countD1(env.DB);
    const listed = await collect(new D1CheckpointStore(counted.db).statuses({ newest: 10, pageSize: 2 }));
    expect(listed.map(({ name, position, lag, parked, found }) => ({ name, position, lag, parked, found }))).toEqual([
      { name: "a", position: 1, lag: 9, parked: 0, found: true },
      { name: "b", position: 4, lag: 6, parked: 1, found: true },
      { name: "c", position: 3, lag: 7, parked: 0, found: true },
    ]);
    expect(listed.every((status) => status.movedAt instanceof Date)).toBe(true);
    expect(counted.calls).toHaveLength(2);
    expect((await collect(store.statuses({ prefix: "b" }))).map((s) => s.name)).toEqual(["b"]);
  });

  it("with a newest query, and a corrupt row raises as in entries()", async () => {
    await env.DB.prepare("INSERT INTO status_events (position) VALUES (20)").run();
    await env.DB.prepare("INSERT INTO checkpoints (name, position) VALUES ('a', 5), ('b', 'oops')").run();
    const store = new D1CheckpointStore(env.DB);
    const seen: number[] = [];
    const error = await (async () => {
      for await (const status of store.statuses({ newest: env.DB.prepare("SELECT MAX(position) AS newest FROM status_events") })) {
        seen.push(status.lag ?? -1);
      }
    })().catch((e: unknown) => e);
    expect(seen).toEqual([15]);
    expect(error).toBeInstanceOf(CorruptCheckpointError);
    expect(error).toMatchObject({ checkpoint: "b", value: "oops" });
  });
});

describe("a newest query that returns junk", () => {
  it.each([
    ["text", "'abc'", CheckpointTypeError],
    ["a fraction", "2.5", CheckpointRangeError],
    ["a negative number", "-3", CheckpointRangeError],
    ["an integer beyond 2^53", "9007199254740993", CheckpointRangeError],
  ])("gets one error naming options.newest from status() and statuses() alike (%s)", async (_label, value, kind) => {
    const store = new D1CheckpointStore(env.DB);
    await store.save("balances", 3);
    const newest = env.DB.prepare(`SELECT ${value} AS newest`);
    const one = await store.status("balances", { newest }).catch((e: unknown) => e);
    const all = await collect(store.statuses({ newest })).catch((e: unknown) => e);
    for (const error of [one, all]) {
      expect(error).toBeInstanceOf(kind);
      expect(error).toMatchObject({ operation: "status" });
      expect((error as { argument: string }).argument).toMatch(/^options\.newest/);
    }
  });
});
