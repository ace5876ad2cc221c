// A metrics recorder that writes one JSON line per run: Workers Logs indexes
// its fields (query `ended`, `projections[0].lag`, `rowsWritten` in the
// dashboard), and `wrangler tail` and Logpush carry it as it is.
import { CheckpointTypeError } from "../core/errors.js";
import { checkFunction, checkOptions, keysOf } from "../core/validate.js";
import type { MetricsRecorder } from "../runner/metrics.js";

/**
 * Options of {@link jsonLogLine}.
 *
 * @category Metrics
 */
export interface JsonLogLineOptions {
  /** The line's `message` field; default `"projection run"`. */
  readonly message?: string | undefined;
  /** Where lines go; default `console.log`, and `console.error` for a failed run (so that Workers Logs shows it as an error). */
  readonly log?: ((line: string, failed: boolean) => void) | undefined;
}

const JSON_LOG_KEYS = keysOf<JsonLogLineOptions>()(["message", "log"]);

/**
 * A recorder that logs each run's report as one line of JSON: `message`,
 * `level` (`"error"` when the run failed, otherwise `"info"`), then every
 * field of the run's report (`RunReport`).
 *
 * @example
 * ```ts
 * metrics: { record: jsonLogLine() }
 * // {"message":"projection run","level":"info","kind":"runner","name":"balances","ended":"caughtUp",...}
 * ```
 *
 * @category Metrics
 */
export function jsonLogLine(options?: JsonLogLineOptions): MetricsRecorder {
  const given = checkOptions("configure", undefined, options, "options", JSON_LOG_KEYS);
  const message = given.message ?? "projection run";
  if (typeof message !== "string") throw new CheckpointTypeError("configure", undefined, "options.message", "must be a string");
  const log =
    checkFunction("configure", undefined, given.log, "options.log") ??
    ((line: string, failed: boolean) => {
      if (failed) console.error(line);
      else console.log(line);
    });
  return (report) => {
    const failed = report.ended === "failed" || report.error !== undefined;
    log(JSON.stringify({ message, level: failed ? "error" : "info", ...report }), failed);
  };
}
