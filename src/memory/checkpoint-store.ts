// The in-memory checkpoint store: the contract's semantics in a Map, for unit
// tests of code that takes a CheckpointStore.
import type {
  CheckpointEntry,
  CheckpointStore,
  ListOptions,
  LoadResult,
  OperationOptions,
  SaveOptions,
} from "../core/store.js";
import { CheckpointConflictError } from "../core/errors.js";
import { keysetPages, parseListOptions, type Page, type PageRequest } from "../core/keyset.js";
import { compareNames } from "../core/name-order.js";
import { conditionHolds, parseNamed, parseSave, SAVE_KEYS } from "../core/arguments.js";
import { waitForCheckpoint, type WaitForOptions } from "../core/wait-for.js";

/**
 * The in-memory reference {@link CheckpointStore}, for unit tests of code
 * that takes a `CheckpointStore` (`save`, `load`, `names`). It checks input
 * exactly as the D1 store does, orders names as SQLite does (by code point,
 * not by UTF-16 unit) and pages the same way. It does not drive a
 * `ProjectionRunner`: there is no read model in memory to commit writes to;
 * test projections in workerd against local D1 (docs/guides/testing.md).
 *
 * @example
 * ```ts
 * const store = new MemoryCheckpointStore();
 * await store.save("balances", 3);
 * await store.save("balances", 4, { expected: 3 }); // conditional, as on D1
 * expect(await store.load("balances")).toEqual({ position: 4, found: true });
 * ```
 *
 * @category Stores
 */
export class MemoryCheckpointStore implements CheckpointStore {
  readonly #positions = new Map<string, number>();

  /** Stores `position` for `name` (with `expected`, only if it still holds). */
  async save(name: string, position: number, options?: SaveOptions): Promise<void> {
    const { name: valid, position: at, expected, signal } = parseSave("save", name, position, options, SAVE_KEYS);
    signal?.throwIfAborted();
    await Promise.resolve();
    const stored = this.#positions.get(valid);
    if (expected !== undefined && !conditionHolds(expected, { position: stored ?? 0, found: stored !== undefined })) {
      throw new CheckpointConflictError("save", valid, expected);
    }
    this.#positions.set(valid, at);
  }

  /** Reads the checkpoint of `name`. */
  async load(name: string, options?: OperationOptions): Promise<LoadResult> {
    const { name: valid, signal } = parseNamed("load", name, options);
    signal?.throwIfAborted();
    await Promise.resolve();
    const position = this.#positions.get(valid);
    return position === undefined ? { position: 0, found: false } : { position, found: true };
  }

  /** Deletes the checkpoint of `name`; no error when there is none. */
  async reset(name: string, options?: OperationOptions): Promise<void> {
    const { name: valid, signal } = parseNamed("reset", name, options);
    signal?.throwIfAborted();
    await Promise.resolve();
    this.#positions.delete(valid);
  }

  /** Resolves when the checkpoint of `name` has reached `position`; see `waitForCheckpoint`. */
  waitFor(name: string, position: number, options?: WaitForOptions): Promise<LoadResult> {
    return waitForCheckpoint(this, name, position, options);
  }

  /** The names in ascending code point order, page by page. */
  names(options?: ListOptions): AsyncIterableIterator<string> {
    return keysetPages(parseListOptions("names", options), (request) => Promise.resolve(this.#page(request, (entry) => entry.name)));
  }

  /** The checkpoints in name order with their positions, page by page. */
  entries(options?: ListOptions): AsyncIterableIterator<CheckpointEntry> {
    return keysetPages(parseListOptions("entries", options), (request) => Promise.resolve(this.#page(request, (entry) => entry)));
  }

  #page<Item>({ lower, inclusive, upper, limit }: PageRequest, toItem: (entry: CheckpointEntry) => Item): Page<Item> {
    if (typeof lower !== "string") return { items: [], rows: 0, last: undefined }; // only D1 has stored bytes
    const names = [...this.#positions.keys()].filter((name) => {
      const fromLower = compareNames(name, lower);
      return (inclusive ? fromLower >= 0 : fromLower > 0) && (upper === undefined || compareNames(name, upper) < 0);
    });
    const page = names.sort(compareNames).slice(0, limit);
    return {
      items: page.map((name) => toItem({ name, position: this.#positions.get(name) ?? 0 })),
      rows: page.length,
      last: page.at(-1),
    };
  }
}
