import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { CheckpointTimeoutError, D1CheckpointStore, MemoryCheckpointStore } from "../src/index.js";
import { interceptD1 } from "../src/testing.js";
import { clearCheckpoints } from "./support/helpers.js";

beforeEach(() => clearCheckpoints());

describe("waitFor: read-your-writes", () => {
  it("resolves at once when the checkpoint is already there or beyond", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.save("balances", 12);
    await expect(store.waitFor("balances", 12)).resolves.toEqual({ position: 12, found: true });
    await expect(store.waitFor("balances", 3)).resolves.toEqual({ position: 12, found: true });
  });

  it("polls, one load per round trip, until the projection catches up", async () => {
    let loads = 0;
    const db = interceptD1(env.DB, async (call, send) => {
      const result = await send();
      if (call.kind === "all") {
        loads += 1;
        // the projection commits while the caller waits: position 5 after the third load
        if (loads === 3) await env.DB.prepare("INSERT INTO checkpoints (name, position) VALUES ('balances', 5)").run();
      }
      return result;
    });
    await expect(new D1CheckpointStore(db).waitFor("balances", 5)).resolves.toEqual({ position: 5, found: true });
    expect(loads).toBe(4);
  });

  it("gives up after timeoutMs with an error saying where the checkpoint is", async () => {
    const store = new D1CheckpointStore(env.DB);
    await store.save("balances", 2);
    const error = await store.waitFor("balances", 9, { timeoutMs: 30 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CheckpointTimeoutError);
    expect(error).toMatchObject({ operation: "waitFor", checkpoint: "balances", position: 9, reached: { position: 2, found: true } });
    expect((error as CheckpointTimeoutError).polls).toBeGreaterThanOrEqual(2);
    await expect(store.waitFor("balances", 9, { timeoutMs: 0 })).rejects.toMatchObject({ polls: 1 });
  });

  it("an abort rejects with the signal's reason, and bad input is refused before any load", async () => {
    const store = new MemoryCheckpointStore();
    const reason = new Error("client went away");
    await expect(store.waitFor("balances", 1, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    await expect(store.waitFor("balances", -1)).rejects.toMatchObject({ name: "CheckpointRangeError", argument: "position" });
    await expect(store.waitFor("balances", 1, { timeoutMs: 60_001 })).rejects.toMatchObject({ argument: "options.timeoutMs" });
    await expect(store.waitFor("", 1)).rejects.toMatchObject({ argument: "name" });
  });
});
