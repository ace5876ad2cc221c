// Keyset paging of `names()` and `entries()`, shared by every store: the
// options, the bounds of each page, and the loop that walks the pages.
import type { ListOptions } from "./store.js";
import type { CheckpointOperation } from "./errors.js";
import { compareNames, prefixUpperBound } from "./name-order.js";
import { checkInteger, checkName, checkOptions, checkSignal } from "./validate.js";
import { LIST_KEYS } from "./arguments.js";

/** The number of rows `names()` and `entries()` fetch per query unless told otherwise. */
export const DEFAULT_PAGE_SIZE = 1000;

/** The largest `pageSize` `names()` and `entries()` accept. */
export const MAX_PAGE_SIZE = 10_000;

/**
 * A stored name that is not valid UTF-8 text (another tool wrote bytes such
 * as FE or FF, or a blob): its exact bytes, so that the next page can start
 * right after it. D1 would hand the text back with U+FFFD in place of the bad
 * bytes, which sorts elsewhere.
 */
export interface RawName {
  readonly bytes: Uint8Array;
  readonly type: "text" | "blob";
}

/** Where a page starts: after a name, or after a stored name that is not valid text. */
export type NameBound = string | RawName;

/** One page request of a keyset listing: names in `lower..upper`, at most `limit`. */
export interface PageRequest {
  /** Lower bound on the name. */
  readonly lower: NameBound;
  /** Whether a name equal to `lower` is included (only on the first page). */
  readonly inclusive: boolean;
  /** Exclusive upper bound on the name, or none. */
  readonly upper: string | undefined;
  /** The page size. */
  readonly limit: number;
}

/** What one page gave: the items to yield, how many rows the query returned, and the last row's name. */
export interface Page<Item> {
  readonly items: Iterable<Item>;
  readonly rows: number;
  readonly last: NameBound | undefined;
}

/** Bounds and paging for a listing, checked. */
export interface KeysetOptions {
  readonly pageSize: number;
  readonly after: string | undefined;
  readonly prefix: string | undefined;
  readonly signal: AbortSignal | undefined;
}

/** Checks the options of `names()` and `entries()`. */
export function parseListOptions(operation: CheckpointOperation, options: ListOptions | undefined, known: readonly string[] = LIST_KEYS): KeysetOptions {
  const { pageSize, after, prefix, signal } = checkOptions(operation, undefined, options, "options", known);
  return {
    pageSize: checkInteger(operation, undefined, pageSize, "options.pageSize", {
      min: 1,
      max: MAX_PAGE_SIZE,
      fallback: DEFAULT_PAGE_SIZE,
    }),
    after: after === undefined ? undefined : checkName(operation, after, "options.after", { allowEmpty: true }),
    prefix: prefix === undefined ? undefined : checkName(operation, prefix, "options.prefix", { allowEmpty: true }),
    signal: checkSignal(operation, undefined, signal),
  };
}

/**
 * Lists items in ascending name order, one page per `fetchPage` call, each
 * page starting after the last row of the previous one (never an OFFSET).
 * The signal is checked before every page; a short page ends the listing.
 */
export async function* keysetPages<Item>(
  options: KeysetOptions,
  fetchPage: (request: PageRequest) => Promise<Page<Item>>,
): AsyncGenerator<Item, void, undefined> {
  const { pageSize, after, prefix, signal } = options;
  let lower: NameBound = "";
  let inclusive = true;
  let upper: string | undefined;
  if (prefix !== undefined) {
    lower = prefix;
    upper = prefixUpperBound(prefix);
  }
  if (after !== undefined && compareNames(after, lower) >= 0) {
    lower = after;
    inclusive = false;
  }
  if (upper !== undefined && compareNames(lower, upper) >= 0) return;

  for (;;) {
    signal?.throwIfAborted();
    const page = await fetchPage({ lower, inclusive, upper, limit: pageSize });
    yield* page.items;
    if (page.rows < pageSize || page.last === undefined) return;
    lower = page.last;
    inclusive = false;
  }
}
