// The bench harness: interleaved, repeated measurement of variants side by
// side, reported as medians with their spread and as per-run ratios.

/** One way of doing the measured thing. */
export interface Variant {
  readonly label: string;
  /** Untimed work before each run (fill tables, reset state). */
  readonly setup?: () => Promise<void>;
  /** The timed work of one run; returns how many operations it did. */
  readonly run: () => Promise<number>;
}

/** A variant's figures over all runs. */
export interface VariantStats {
  readonly label: string;
  /** Operations per second, per run. */
  readonly rates: readonly number[];
  /** Milliseconds per run. */
  readonly millis: readonly number[];
}

/** A table for docs/benchmarks.md. */
export interface BenchTable {
  readonly title: string;
  readonly note?: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly (string | number)[])[];
}

/** The order of the tables in docs/benchmarks.md, by title. */
export const TABLE_ORDER: readonly string[] = [
  "save, load, reset",
  "In-memory store, for reference",
  "D1 round trips per operation",
  "commit against two separate calls",
  "Projection throughput",
  "Projection with network latency",
  "Set-based writes against one statement per event",
  "One invocation, a budget of 1,000 queries",
  "Five projections: one group against five runners",
  "Cost in rows: per-event against set-based writes",
  "Cost in rows: a group of five against five runners",
  "Cost in rows: a leased run against a plain one",
  "Drizzle and Kysely adapters against raw D1 statements",
  "Version fences",
  "Overlapping runners",
  "Projection daemon: freshness",
  "Projection daemon: catch-up past the per-invocation limit",
  "Projection daemon: a rebuild beside the live version",
  "Durable Object store",
  "Listing every checkpoint: keyset against OFFSET",
];

/** The median of a non-empty list. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/**
 * Runs every variant once untimed (warm-up), then `runs` times, interleaved
 * (run 1 of each, then run 2 of each, in rotating order) so that drift on a
 * noisy machine hits all alike.
 */
export async function interleave(variants: readonly Variant[], runs: number): Promise<VariantStats[]> {
  for (const variant of variants) {
    await variant.setup?.();
    await variant.run();
  }
  const stats = variants.map((variant) => ({ label: variant.label, rates: [] as number[], millis: [] as number[] }));
  for (let r = 0; r < runs; r++) {
    for (let k = 0; k < variants.length; k++) {
      const index = (r + k) % variants.length;
      const variant = variants[index];
      const into = stats[index];
      if (variant === undefined || into === undefined) continue;
      await variant.setup?.();
      const start = performance.now();
      const ops = await variant.run();
      const elapsed = Math.max(performance.now() - start, 0.001);
      into.millis.push(elapsed);
      into.rates.push((ops * 1000) / elapsed);
    }
  }
  return stats;
}

/** The median over runs of `variant`'s time divided by `baseline`'s time in the same run. */
export function timeRatio(variant: VariantStats, baseline: VariantStats): number {
  return median(variant.millis.map((ms, run) => ms / (baseline.millis[run] ?? ms)));
}

/** `1,234` */
export function count(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}

/** `1,234 (1,100–1,300)` */
export function rateWithSpread(rates: readonly number[]): string {
  return `${count(median(rates))} (${count(Math.min(...rates))}–${count(Math.max(...rates))})`;
}

/** `1.02×` */
export function ratio(value: number): string {
  return `${value.toFixed(2)}×`;
}
