/**
 * The contract every {@link CheckpointStore} must pass, as a vitest suite:
 * the cases of synapse's Go contract suite plus this package's paging and
 * conditional-save guarantees. Run it against your own implementation or
 * wrapper:
 *
 * ```ts
 * import { runCheckpointStoreContract } from "@synapse-es/checkpointstore-d1/contract";
 * runCheckpointStoreContract(async () => new MyStore(await freshDatabase()));
 * ```
 *
 * @packageDocumentation
 */
import { describe, expect, it } from "vitest";
import type { CheckpointStore } from "./core/store.js";
import { CheckpointConflictError } from "./core/errors.js";

export type {
  CheckpointEntry,
  CheckpointStore,
  ListOptions,
  LoadResult,
  OperationOptions,
  SaveOptions,
} from "./core/store.js";

/** Makes an empty store; called once per test case. */
export type CheckpointStoreFactory = () => CheckpointStore | Promise<CheckpointStore>;

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

function aborted(reason: unknown = new Error("contract: aborted on purpose")): AbortSignal {
  const controller = new AbortController();
  controller.abort(reason);
  return controller.signal;
}

async function seed(store: CheckpointStore, names: readonly string[]): Promise<void> {
  for (const [index, name] of names.entries()) await store.save(name, index + 1);
}

/**
 * Registers the contract suite (a vitest `describe` block) for the stores
 * `factory` makes. `label` names the implementation in the test report.
 */
export function runCheckpointStoreContract(factory: CheckpointStoreFactory, label = "CheckpointStore"): void {
  describe(`${label} contract`, () => {
    it("loads a missing checkpoint as position 0, not found", async () => {
      const store = await factory();
      await expect(store.load("never-saved")).resolves.toEqual({ position: 0, found: false });
    });

    it("loads what it saved", async () => {
      const store = await factory();
      await store.save("orders", 42);
      await expect(store.load("orders")).resolves.toEqual({ position: 42, found: true });
    });

    it("overwrites an earlier save", async () => {
      const store = await factory();
      await store.save("orders", 42);
      await store.save("orders", 7);
      await expect(store.load("orders")).resolves.toEqual({ position: 7, found: true });
    });

    it("saves position 0 as found", async () => {
      const store = await factory();
      await store.save("orders", 0);
      await expect(store.load("orders")).resolves.toEqual({ position: 0, found: true });
    });

    it("keeps the largest safe integer exactly", async () => {
      const store = await factory();
      await store.save("orders", Number.MAX_SAFE_INTEGER);
      await expect(store.load("orders")).resolves.toEqual({ position: Number.MAX_SAFE_INTEGER, found: true });
    });

    it("reset deletes the checkpoint", async () => {
      const store = await factory();
      await store.save("orders", 42);
      await store.reset("orders");
      await expect(store.load("orders")).resolves.toEqual({ position: 0, found: false });
      await expect(collect(store.names())).resolves.toEqual([]);
    });

    it("reset of a missing checkpoint is no error", async () => {
      const store = await factory();
      await expect(store.reset("never-saved")).resolves.toBeUndefined();
    });

    it("keeps checkpoints of different names apart", async () => {
      const store = await factory();
      await store.save("a", 1);
      await store.save("b", 2);
      await store.reset("a");
      await store.save("c", 3);
      await expect(store.load("a")).resolves.toEqual({ position: 0, found: false });
      await expect(store.load("b")).resolves.toEqual({ position: 2, found: true });
      await expect(store.load("c")).resolves.toEqual({ position: 3, found: true });
    });

    it("treats names as exact strings: case, spaces, wildcards and emoji", async () => {
      const store = await factory();
      const names = ["Orders", "orders", "orders ", "or%_ders", "😀", "naïve"];
      for (const [index, name] of names.entries()) await store.save(name, index);
      for (const [index, name] of names.entries()) {
        await expect(store.load(name)).resolves.toEqual({ position: index, found: true });
      }
    });

    it("survives 64 concurrent saves and loads", async () => {
      const store = await factory();
      const saves = Array.from({ length: 64 }, (_, i) => store.save("hot", i + 1));
      const loads = Array.from({ length: 64 }, () => store.load("hot"));
      const results = await Promise.all([...saves, ...loads]);
      for (const result of results.slice(64)) {
        const { position, found } = result as { position: number; found: boolean };
        if (found) expect(position).toBeGreaterThanOrEqual(1);
        expect(position).toBeLessThanOrEqual(64);
      }
      const final = await store.load("hot");
      expect(final.found).toBe(true);
      expect(final.position).toBeGreaterThanOrEqual(1);
      expect(final.position).toBeLessThanOrEqual(64);
    });

    describe("cancellation", () => {
      it("save with an aborted signal rejects with its reason and writes nothing", async () => {
        const store = await factory();
        const reason = new Error("stop");
        await expect(store.save("orders", 1, { signal: aborted(reason) })).rejects.toBe(reason);
        await expect(store.load("orders")).resolves.toEqual({ position: 0, found: false });
      });

      it("load with an aborted signal rejects with its reason", async () => {
        const store = await factory();
        const reason = new Error("stop");
        await expect(store.load("orders", { signal: aborted(reason) })).rejects.toBe(reason);
      });

      it("reset with an aborted signal rejects with its reason and deletes nothing", async () => {
        const store = await factory();
        await store.save("orders", 5);
        const reason = new Error("stop");
        await expect(store.reset("orders", { signal: aborted(reason) })).rejects.toBe(reason);
        await expect(store.load("orders")).resolves.toEqual({ position: 5, found: true });
      });

      it("names and entries with an aborted signal reject with its reason", async () => {
        const store = await factory();
        await store.save("orders", 5);
        const reason = new Error("stop");
        await expect(collect(store.names({ signal: aborted(reason) }))).rejects.toBe(reason);
        await expect(collect(store.entries({ signal: aborted(reason) }))).rejects.toBe(reason);
      });

      it("an abort without a reason rejects with an AbortError", async () => {
        const store = await factory();
        const controller = new AbortController();
        controller.abort();
        await expect(store.load("orders", { signal: controller.signal })).rejects.toMatchObject({ name: "AbortError" });
      });

      it("an abort between pages stops the listing", async () => {
        const store = await factory();
        await seed(store, ["a", "b", "c", "d"]);
        const controller = new AbortController();
        const seen: string[] = [];
        const reason = new Error("enough");
        const listing = (async () => {
          for await (const name of store.names({ pageSize: 2, signal: controller.signal })) {
            seen.push(name);
            if (seen.length === 2) controller.abort(reason);
          }
        })();
        await expect(listing).rejects.toBe(reason);
        expect(seen).toEqual(["a", "b"]);
      });
    });

    describe("conditional save", () => {
      it("expected null creates a new checkpoint", async () => {
        const store = await factory();
        await store.save("orders", 3, { expected: null });
        await expect(store.load("orders")).resolves.toEqual({ position: 3, found: true });
      });

      it("expected null conflicts when a checkpoint exists, and writes nothing", async () => {
        const store = await factory();
        await store.save("orders", 3);
        const error = await store.save("orders", 9, { expected: null }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(CheckpointConflictError);
        expect(error).toMatchObject({ checkpoint: "orders", expected: null, operation: "save" });
        await expect(store.load("orders")).resolves.toEqual({ position: 3, found: true });
      });

      it("an expected position that holds moves the checkpoint", async () => {
        const store = await factory();
        await store.save("orders", 3);
        await store.save("orders", 9, { expected: 3 });
        await expect(store.load("orders")).resolves.toEqual({ position: 9, found: true });
      });

      it("an expected position that does not hold conflicts, and writes nothing", async () => {
        const store = await factory();
        await store.save("orders", 4);
        const error = await store.save("orders", 9, { expected: 3 }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(CheckpointConflictError);
        expect(error).toMatchObject({ checkpoint: "orders", expected: 3 });
        await expect(store.load("orders")).resolves.toEqual({ position: 4, found: true });
      });

      it("an expected position above 0 conflicts when there is no checkpoint, and writes nothing", async () => {
        const store = await factory();
        await expect(store.save("orders", 9, { expected: 1 })).rejects.toBeInstanceOf(CheckpointConflictError);
        await expect(store.load("orders")).resolves.toEqual({ position: 0, found: false });
      });

      it("expected 0 holds for no checkpoint, as load reports one at 0 (the position a fresh projection starts from)", async () => {
        const store = await factory();
        const { position } = await store.load("orders");
        await store.save("orders", 9, { expected: position });
        await expect(store.load("orders")).resolves.toEqual({ position: 9, found: true });
        await store.save("fresh", 0);
        await store.save("fresh", 4, { expected: 0 });
        await expect(store.load("fresh")).resolves.toEqual({ position: 4, found: true });
        // Only null insists that none exists.
        await expect(store.save("orders", 10, { expected: null })).rejects.toBeInstanceOf(CheckpointConflictError);
      });

      it("of two racing saves from the same position, exactly one wins", async () => {
        const store = await factory();
        await store.save("orders", 1);
        const outcomes = await Promise.allSettled(
          Array.from({ length: 8 }, (_, i) => store.save("orders", 10 + i, { expected: 1 })),
        );
        const won = outcomes.filter((o) => o.status === "fulfilled");
        expect(won).toHaveLength(1);
        for (const o of outcomes) {
          if (o.status === "rejected") expect(o.reason).toBeInstanceOf(CheckpointConflictError);
        }
        const { position } = await store.load("orders");
        expect(position).toBeGreaterThanOrEqual(10);
        expect(position).toBeLessThan(18);
      });
    });

    describe("listing", () => {
      it("an empty store lists nothing", async () => {
        const store = await factory();
        await expect(collect(store.names())).resolves.toEqual([]);
        await expect(collect(store.entries())).resolves.toEqual([]);
      });

      it("lists names in ascending order", async () => {
        const store = await factory();
        await seed(store, ["delta", "alpha", "charlie", "bravo"]);
        await expect(collect(store.names())).resolves.toEqual(["alpha", "bravo", "charlie", "delta"]);
      });

      it("orders by code point (UTF-8 bytes), as SQLite does, not by UTF-16 unit", async () => {
        const store = await factory();
        // UTF-16 puts U+1F600 (a surrogate pair) before U+FF5E; code points put it after.
        await seed(store, ["\u{1F600}", "\uFF5E", "Z", "a", "\u00E9"]);
        await expect(collect(store.names())).resolves.toEqual(["Z", "a", "\u00E9", "\uFF5E", "\u{1F600}"]);
      });

      it("entries yields names with positions", async () => {
        const store = await factory();
        await store.save("b", 20);
        await store.save("a", 10);
        await expect(collect(store.entries())).resolves.toEqual([
          { name: "a", position: 10 },
          { name: "b", position: 20 },
        ]);
      });

      it.each([1, 2, 3, 7, 8])("pageSize %i lists every name once, in order", async (pageSize) => {
        const store = await factory();
        const names = ["a", "b", "c", "d", "e", "f", "g"];
        await seed(store, names);
        await expect(collect(store.names({ pageSize }))).resolves.toEqual(names);
        await expect(collect(store.entries({ pageSize }))).resolves.toEqual(
          names.map((name, i) => ({ name, position: i + 1 })),
        );
      });

      it("after starts after the given name, whether or not it exists", async () => {
        const store = await factory();
        await seed(store, ["a", "b", "c", "d"]);
        await expect(collect(store.names({ after: "b" }))).resolves.toEqual(["c", "d"]);
        await expect(collect(store.names({ after: "bb", pageSize: 1 }))).resolves.toEqual(["c", "d"]);
        await expect(collect(store.names({ after: "d" }))).resolves.toEqual([]);
        await expect(collect(store.names({ after: "" }))).resolves.toEqual(["a", "b", "c", "d"]);
      });

      it("prefix lists only names that start with it, wildcards taken literally", async () => {
        const store = await factory();
        await seed(store, ["order", "orders/1", "orders/2", "orders0", "orders_x", "order%", "ordert", "p", "ordera"]);
        await expect(collect(store.names({ prefix: "orders" }))).resolves.toEqual([
          "orders/1",
          "orders/2",
          "orders0",
          "orders_x",
        ]);
        await expect(collect(store.names({ prefix: "order%" }))).resolves.toEqual(["order%"]);
        await expect(collect(store.names({ prefix: "orders_", pageSize: 1 }))).resolves.toEqual(["orders_x"]);
        await expect(collect(store.names({ prefix: "q" }))).resolves.toEqual([]);
        await expect(collect(store.names({ prefix: "" }))).resolves.toHaveLength(9);
      });

      it("prefix works with characters above U+FFFF and at the top of Unicode", async () => {
        const store = await factory();
        const top = "\u{10FFFF}";
        await seed(store, ["\u{1F600}a", "\u{1F600}", "\u{1F601}", `x${top}`, `x${top}${top}`, "y", top]);
        await expect(collect(store.names({ prefix: "\u{1F600}" }))).resolves.toEqual(["\u{1F600}", "\u{1F600}a"]);
        await expect(collect(store.names({ prefix: `x${top}` }))).resolves.toEqual([`x${top}`, `x${top}${top}`]);
        await expect(collect(store.names({ prefix: top }))).resolves.toEqual([top]);
      });

      it("prefix and after combine", async () => {
        const store = await factory();
        await seed(store, ["a", "t/1", "t/2", "t/3", "u"]);
        await expect(collect(store.names({ prefix: "t/", after: "t/1" }))).resolves.toEqual(["t/2", "t/3"]);
        await expect(collect(store.names({ prefix: "t/", after: "a" }))).resolves.toEqual(["t/1", "t/2", "t/3"]);
        await expect(collect(store.names({ prefix: "t/", after: "t/3" }))).resolves.toEqual([]);
        await expect(collect(store.names({ prefix: "t/", after: "u" }))).resolves.toEqual([]);
      });

      it("breaking out early leaves the store usable", async () => {
        const store = await factory();
        await seed(store, ["a", "b", "c", "d", "e"]);
        const seen: string[] = [];
        for await (const name of store.names({ pageSize: 2 })) {
          seen.push(name);
          if (seen.length === 3) break;
        }
        expect(seen).toEqual(["a", "b", "c"]);
        await expect(collect(store.names())).resolves.toHaveLength(5);
      });

      it("names added or removed while listing cause no duplicate and skip no name that stayed", async () => {
        const store = await factory();
        const initial = Array.from({ length: 20 }, (_, i) => `n${String(i).padStart(2, "0")}`);
        await seed(store, initial);
        const removed = new Set(["n03", "n12", "n19"]);
        const seen: string[] = [];
        for await (const name of store.names({ pageSize: 3 })) {
          seen.push(name);
          if (seen.length === 5) {
            for (const gone of removed) await store.reset(gone);
            await store.save("n00a", 1); // behind the cursor
            await store.save("n15a", 1); // ahead of it
          }
        }
        expect(new Set(seen).size).toBe(seen.length);
        expect([...seen].sort()).toEqual(seen);
        for (const name of initial) if (!removed.has(name)) expect(seen).toContain(name);
        expect(seen).toContain("n15a");
      });
    });
  });
}
