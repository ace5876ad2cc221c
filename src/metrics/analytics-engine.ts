// A metrics recorder that writes Workers Analytics Engine data points: one
// per run of a runner, and for a group one for the group and one per
// projection, in one fixed layout (ANALYTICS_ENGINE_LAYOUT) that the queries
// of docs/guides/metrics.md read.
import { CheckpointTypeError } from "../core/errors.js";
import type { MetricsRecorder, ProjectionReport, RunReport } from "../runner/metrics.js";

/**
 * Where each field of a data point is. `blob1` tells the points apart:
 * `"runner"` (a runner's run: the run and its one projection), `"group"` (a
 * group's run, its totals) and `"member"` (one projection's part of a group's
 * run). Sum rows over `runner` and `member` points for cost per projection,
 * and never add `group` points to them: they hold the same rows again, plus
 * what the group's projections shared. A number that is unknown (lag without
 * `metrics.newest`) is written as -1.
 *
 * @category Metrics
 */
export const ANALYTICS_ENGINE_LAYOUT = Object.freeze({
  /** The projection's name (a group's name on its `group` point), its first 96 bytes: the sampling key. */
  index1: "name",
  blob1: "kind",
  blob2: "name",
  /** How it ended. */
  blob3: "ended",
  /** The group, on a `member` point; `""` otherwise. */
  blob4: "group",
  /** The error, when it failed (at most 200 characters); `""` otherwise. */
  blob5: "error",
  double1: "events",
  /** D1 queries: the run's, on `runner` and `group` points; 0 on `member` points (the group sends them). */
  double2: "queries",
  double3: "rowsRead",
  double4: "rowsWritten",
  double5: "ownRowsRead",
  double6: "ownRowsWritten",
  /** Positions behind the newest event after the run; -1 when unknown. */
  double7: "lag",
  /** Milliseconds since the oldest unapplied event was appended; -1 when unknown. */
  double8: "oldestUnappliedAgeMs",
  double9: "batches",
  double10: "durationMs",
});

/** Analytics Engine's limit on an index, in UTF-8 bytes. */
const MAX_INDEX_BYTES = 96;

/** The longest prefix of `text` that fits in `bytes` UTF-8 bytes, never cutting a character (names may be 1,024 bytes; `blob2` keeps the whole). */
function utf8Prefix(text: string, bytes: number): string {
  const encoder = new TextEncoder();
  if (encoder.encode(text).length <= bytes) return text;
  let out = "";
  let used = 0;
  for (const char of text) {
    const size = encoder.encode(char).length;
    if (used + size > bytes) break;
    out += char;
    used += size;
  }
  return out;
}

/** -1 for a number that is not known. */
const known = (value: number | undefined): number => value ?? -1;

function point(kind: "runner" | "group" | "member", part: ProjectionReport | RunReport, group: string, queries: number, batches: number, lag: ProjectionReport | undefined, durationMs: number): AnalyticsEngineDataPoint {
  return {
    indexes: [utf8Prefix(part.name, MAX_INDEX_BYTES)],
    blobs: [kind, part.name, part.ended, group, (part.error ?? "").slice(0, 200)],
    doubles: [part.events, queries, part.rowsRead, part.rowsWritten, part.ownRowsRead, part.ownRowsWritten, known(lag?.lag), known(lag?.oldestUnappliedAgeMs), batches, durationMs],
  };
}

/**
 * A recorder that writes each run to an Analytics Engine dataset, in
 * {@link ANALYTICS_ENGINE_LAYOUT}: a runner's run is one data point; a
 * group's run is one for the group and one per projection. Declare the
 * dataset in wrangler's `analytics_engine_datasets` and pass its binding.
 *
 * @example
 * ```ts
 * metrics: { record: analyticsEngine(env.PROJECTION_METRICS), newest: env.DB.prepare("SELECT MAX(position) FROM events") }
 * ```
 *
 * @category Metrics
 */
export function analyticsEngine(dataset: AnalyticsEngineDataset): MetricsRecorder {
  if (typeof (dataset as { writeDataPoint?: unknown } | null)?.writeDataPoint !== "function") {
    throw new CheckpointTypeError("configure", undefined, "dataset", "must be an Analytics Engine binding (with writeDataPoint)");
  }
  return (report) => {
    if (report.kind === "runner") {
      const [projection] = report.projections;
      const part = projection ?? report;
      dataset.writeDataPoint(point("runner", { ...part, name: report.name, ended: report.ended, error: report.error }, "", report.queries, report.batches, projection, report.durationMs));
      return;
    }
    dataset.writeDataPoint(point("group", report, "", report.queries, report.batches, undefined, report.durationMs));
    for (const projection of report.projections) dataset.writeDataPoint(point("member", projection, report.name, 0, 0, projection, report.durationMs));
  };
}
