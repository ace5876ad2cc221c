/**
 * Metrics of projection runs (`@synapse-es/checkpointstore-d1/metrics`):
 * ready recorders for the `metrics` option of runners, groups and daemons —
 * one JSON log line per run for Workers Logs ({@link jsonLogLine}), Workers
 * Analytics Engine data points ({@link analyticsEngine}), and a run log in D1
 * that the admin page reads ({@link D1RunLog}) — and the prices that turn
 * rows into dollars ({@link PRICES}). Decision 0027; the core never imports
 * this entry.
 *
 * @packageDocumentation
 */
export { analyticsEngine, ANALYTICS_ENGINE_LAYOUT } from "./metrics/analytics-engine.js";
export { jsonLogLine, type JsonLogLineOptions } from "./metrics/json-log.js";
export { D1RunLog, type D1RunLogOptions, type RecentRuns } from "./metrics/run-log.js";
export { dollarsFor, PRICES, type Prices } from "./metrics/prices.js";
export type { MetricsRecorder, ProjectionReport, RecordContext, RunMetrics, RunReport } from "./runner/metrics.js";
