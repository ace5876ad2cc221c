// The overview's cost column (decision 0027): each listed projection's rows
// written per 1,000 events over its recent runs, read from the run log (one
// query per 100 projections). A run log that cannot be read is named on the
// page, never its failure; page.ts renders the cells.
import { messageOf } from "../core/errors.js";
import type { RecentRuns } from "../metrics/run-log.js";
import type { ProjectionView } from "./views.js";

/** What the admin page reads recent runs from: a `D1RunLog` (from `./metrics`), or your own. */
export interface AdminRunLog {
  /** The recent runs of `names` (at most 100), added up per projection; names without runs left out. */
  recent(names: readonly string[]): Promise<ReadonlyMap<string, RecentRuns>>;
}

/** The listed projections with their recent runs (`recentRuns`), and why they are missing when the run log failed. */
export async function withRecentRuns(
  runLog: AdminRunLog,
  projections: readonly ProjectionView[],
): Promise<{ projections: ProjectionView[]; runLogError: string | undefined }> {
  const names = projections.filter((row) => !("corrupt" in row)).map((row) => row.name);
  // `recent` takes 100 names at a time: one query per 100 listed projections, at the same time.
  const chunks = Array.from({ length: Math.ceil(names.length / 100) }, (_, index) => names.slice(index * 100, index * 100 + 100));
  const recent = new Map<string, RecentRuns>();
  try {
    for (const found of await Promise.all(chunks.map((chunk) => runLog.recent(chunk)))) for (const [name, runs] of found) recent.set(name, runs);
  } catch (error) {
    return { projections: [...projections], runLogError: `the run log failed: ${messageOf(error)}` };
  }
  return {
    projections: projections.map((row) => ("corrupt" in row ? row : { ...row, recentRuns: recent.get(row.name) })),
    runLogError: undefined,
  };
}
