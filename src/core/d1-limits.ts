// D1's documented limits that the package checks against, in one place
// (https://developers.cloudflare.com/d1/platform/limits/).

/**
 * D1's largest string, BLOB or table row: 2,000,000 bytes
 * (https://developers.cloudflare.com/d1/platform/limits/). One bound JSON
 * value may hold no more, so {@link jsonRowChunks} splits the rows to stay
 * within it (counted in bytes of UTF-8, not in UTF-16 units).
 *
 * @category Limits
 */
export const D1_MAX_VALUE_BYTES = 2_000_000;

/**
 * D1's longest SQL statement: 100,000 bytes of UTF-8
 * (https://developers.cloudflare.com/d1/platform/limits/). Bound values do
 * not count, so the rows never make a statement longer.
 *
 * @category Limits
 */
export const D1_MAX_STATEMENT_BYTES = 100_000;

/**
 * D1's limit of queries per Worker invocation on the paid plan (50 on the free plan).
 *
 * @category Limits
 */
export const D1_QUERIES_PER_INVOCATION = 1000;

/**
 * D1's most bound parameters per query: statements with more fail when the
 * batch is sent (local D1 enforces it too). Bind a batch's rows as one JSON
 * value instead (`jsonRowStatements`).
 *
 * @category Limits
 */
export const D1_MAX_BOUND_PARAMETERS = 100;
