import type {
  CheckpointEntry,
  CheckpointStore,
  ListOptions,
  LoadResult,
  OperationOptions,
  SaveOptions,
} from "./checkpoint-store.js";
import { CheckpointConflictError } from "./errors.js";
import { keysetPages, mapRows, type KeysetOptions, type PageRequest } from "./keyset.js";
import { compareNames } from "./name-order.js";
import { checkExpected, checkListOptions, checkName, checkOptions, checkPosition, checkSignal } from "./validate.js";

/**
 * The in-memory reference {@link CheckpointStore}, for unit tests of
 * projections. It checks input exactly as the D1 store does, orders names as
 * SQLite does (by code point, not by UTF-16 unit) and pages the same way, so
 * a projection tested against it behaves the same on D1.
 */
export class MemoryCheckpointStore implements CheckpointStore {
  readonly #positions = new Map<string, number>();

  /** Stores `position` for `name` (with `expected`, only if it still holds). */
  async save(name: string, position: number, options?: SaveOptions): Promise<void> {
    const valid = checkName("save", name);
    const at = checkPosition("save", valid, position);
    const { expected, signal } = checkOptions("save", valid, options);
    const condition = checkExpected("save", valid, expected);
    checkSignal("save", valid, signal)?.throwIfAborted();
    await Promise.resolve();
    if (condition !== undefined && (this.#positions.get(valid) ?? null) !== condition) {
      throw new CheckpointConflictError("save", valid, condition);
    }
    this.#positions.set(valid, at);
  }

  /** Reads the checkpoint of `name`. */
  async load(name: string, options?: OperationOptions): Promise<LoadResult> {
    const valid = checkName("load", name);
    checkSignal("load", valid, checkOptions("load", valid, options).signal)?.throwIfAborted();
    await Promise.resolve();
    const position = this.#positions.get(valid);
    return position === undefined ? { position: 0, found: false } : { position, found: true };
  }

  /** Deletes the checkpoint of `name`; no error when there is none. */
  async reset(name: string, options?: OperationOptions): Promise<void> {
    const valid = checkName("reset", name);
    checkSignal("reset", valid, checkOptions("reset", valid, options).signal)?.throwIfAborted();
    await Promise.resolve();
    this.#positions.delete(valid);
  }

  /** The names in ascending code point order, page by page. */
  names(options?: ListOptions): AsyncIterableIterator<string> {
    return mapRows(this.#entries(checkListOptions("names", options)), (entry) => entry.name);
  }

  /** The checkpoints in name order with their positions, page by page. */
  entries(options?: ListOptions): AsyncIterableIterator<CheckpointEntry> {
    return this.#entries(checkListOptions("entries", options));
  }

  #entries(listing: KeysetOptions): AsyncGenerator<CheckpointEntry, void, undefined> {
    return keysetPages(listing, (request) => Promise.resolve(this.#page(request)), (entry) => entry.name);
  }

  #page({ lower, inclusive, upper, limit }: PageRequest): CheckpointEntry[] {
    const names = [...this.#positions.keys()].filter((name) => {
      const fromLower = compareNames(name, lower);
      return (inclusive ? fromLower >= 0 : fromLower > 0) && (upper === undefined || compareNames(name, upper) < 0);
    });
    return names
      .sort(compareNames)
      .slice(0, limit)
      .map((name) => ({ name, position: this.#positions.get(name) ?? 0 }));
  }
}
