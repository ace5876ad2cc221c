import { compareNames, prefixUpperBound } from "./name-order.js";

/** One page request of a keyset listing: names in `lower..upper`, at most `limit`. */
export interface PageRequest {
  /** Lower bound on the name. */
  readonly lower: string;
  /** Whether a name equal to `lower` is included (only on the first page of a prefix listing). */
  readonly inclusive: boolean;
  /** Exclusive upper bound on the name, or none. */
  readonly upper: string | undefined;
  /** The page size. */
  readonly limit: number;
}

/** Bounds and paging for a listing. */
export interface KeysetOptions {
  readonly pageSize: number;
  readonly after: string | undefined;
  readonly prefix: string | undefined;
  readonly signal: AbortSignal | undefined;
}

/**
 * Lists rows in ascending name order, one page per `fetchPage` call, each
 * page starting after the last name of the previous one (never an OFFSET).
 * The signal is checked before every page; a short page ends the listing.
 */
export async function* keysetPages<Row>(
  options: KeysetOptions,
  fetchPage: (request: PageRequest) => Promise<readonly Row[]>,
  nameOf: (row: Row) => string,
): AsyncGenerator<Row, void, undefined> {
  const { pageSize, after, prefix, signal } = options;
  let lower = "";
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
    const rows = await fetchPage({ lower, inclusive, upper, limit: pageSize });
    yield* rows;
    const last = rows.at(-1);
    if (rows.length < pageSize || last === undefined) return;
    lower = nameOf(last);
    inclusive = false;
  }
}

/** Maps each row of an async iterable, lazily. */
export async function* mapRows<Row, Out>(
  rows: AsyncIterable<Row>,
  map: (row: Row) => Out,
): AsyncGenerator<Out, void, undefined> {
  for await (const row of rows) yield map(row);
}
