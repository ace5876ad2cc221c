// What rows and requests cost, at Cloudflare's published prices, read on the
// date the constant says: the one place the package (its benchmarks, the
// admin page, your dashboards' arithmetic) takes them from.
import type { RowUsage } from "../core/row-usage.js";

/**
 * Prices of rows and requests, in dollars, as {@link PRICES} has them; pass
 * other ones to {@link dollarsFor} (a contract's, a later price list).
 *
 * @category Metrics
 */
export interface Prices {
  /** The date the prices were read, ISO 8601. */
  readonly readOn: string;
  /** Dollars per million rows written, after the included ones. */
  readonly rowsWrittenPerMillion: number;
  /** Dollars per million rows read, after the included ones. */
  readonly rowsReadPerMillion: number;
  /** Dollars per million Durable Object requests, after the included ones. */
  readonly durableObjectRequestsPerMillion: number;
  /** Rows written included each month. */
  readonly includedRowsWrittenPerMonth: number;
  /** Rows read included each month. */
  readonly includedRowsReadPerMonth: number;
}

/**
 * Cloudflare's prices for D1 and Durable Object SQLite (the same for both),
 * as read from its pricing pages on `readOn`. Beyond the included amounts
 * each month, rows written cost `rowsWrittenPerMillion` dollars a million and
 * rows read `rowsReadPerMillion`; Durable Object requests (an RPC session is
 * one) `durableObjectRequestsPerMillion`.
 *
 * @category Metrics
 */
export const PRICES: Prices = Object.freeze({
  /** When these were read from https://developers.cloudflare.com/d1/platform/pricing/ and the Durable Objects pricing page. */
  readOn: "2026-12-03",
  /** Dollars per million rows written, after the included ones. */
  rowsWrittenPerMillion: 1.0,
  /** Dollars per million rows read, after the included ones. */
  rowsReadPerMillion: 0.001,
  /** Dollars per million Durable Object requests, after the included ones. */
  durableObjectRequestsPerMillion: 0.15,
  /** Rows written included each month (paid plan). */
  includedRowsWrittenPerMonth: 50_000_000,
  /** Rows read included each month (paid plan). */
  includedRowsReadPerMonth: 25_000_000_000,
});

/**
 * The dollars `rows` cost beyond the monthly included amounts, at
 * {@link PRICES}: what they add to a bill that is already past them.
 *
 * @example
 * ```ts
 * const summary = await balances.run();
 * console.log(dollarsFor(summary) / summary.events * 1e6, "dollars per million events");
 * ```
 *
 * @category Metrics
 */
export function dollarsFor(rows: Pick<RowUsage, "rowsRead" | "rowsWritten">, prices: Prices = PRICES): number {
  return (rows.rowsWritten * prices.rowsWrittenPerMillion + rows.rowsRead * prices.rowsReadPerMillion) / 1_000_000;
}
