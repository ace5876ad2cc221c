// What a projection daemon is configured with and what it reports: the
// daemon's public shapes (decision 0025).
import type { ProjectionVersion } from "../core/store.js";
import type { ProjectionStatus } from "../sql/status.js";
import type { RunOptions } from "../runner/run-options.js";
import type { RunMetrics } from "../runner/metrics.js";
import type { AlarmSchedule } from "./alarm-schedule.js";

/** What a daemon runs: a `ProjectionRunner` or a `ProjectionGroup` (anything whose `run` reports how it ended). */
export interface DaemonRun {
  run(options?: RunOptions): Promise<{ readonly ended: string; readonly caughtUp: boolean; readonly queries: number }>;
}

/** A store that can switch a rebuild live: the D1 and Durable Object stores. */
export interface DaemonSwitchStore {
  versions(name: string): Promise<readonly ProjectionVersion[]>;
  status(name: string): Promise<ProjectionStatus>;
  switchVersion(name: string, version: number, options?: { readonly retire?: "keep" | "drop" | undefined }): Promise<void>;
}

/** Switches a rebuild live as soon as a run finds it caught up with the live version (opt-in). */
export interface DaemonSwitch {
  /** The store that keeps the projections' versions. */
  readonly store: DaemonSwitchStore;
  /** The projections whose rebuilds switch by themselves. */
  readonly names: readonly string[];
  /** As `switchVersion`'s `retire`: keep (default) or drop the version that was live. */
  readonly retire?: "keep" | "drop" | undefined;
}

/** Configuration of a {@link ProjectionDaemon}. */
export interface DaemonOptions {
  /** The daemon's name (its row and its alarm job); one object usually runs one daemon. */
  readonly name: string;
  /** What it runs: a runner or a group. Give it `lease: true`, so that a cron or a manual run yields to the daemon's. */
  readonly projection: DaemonRun;
  /** D1 queries per run, each run an invocation of its own: default 900 of the paid plan's 1,000 (use 45 on the free plan's 50). */
  readonly budget?: number | undefined;
  /** The most batches per run; default: as many as the budget allows. */
  readonly maxBatches?: number | undefined;
  /** Delays after failed runs: `baseMs` (default 1 s) doubling per failure in a row, at most `maxMs` (default 5 min). */
  readonly backoff?: { readonly baseMs?: number | undefined; readonly maxMs?: number | undefined } | undefined;
  /** Switch rebuilds live as soon as they have caught up (opt-in; otherwise the admin's Switch does it). */
  readonly autoSwitch?: DaemonSwitch | undefined;
  /**
   * Who gets each run's report (see `RunMetrics`): given to every run the
   * daemon makes, instead of the runner's or group's own `metrics`.
   */
  readonly metrics?: RunMetrics | undefined;
  /** Called after every run with how it went (the daemon's own view: backoff, switches); what it throws is ignored. */
  readonly onRun?: ((outcome: RunOutcome) => void | Promise<void>) | undefined;
  /** The object's shared alarm schedule, when the object has alarm work of its own; default: one of the daemon's. */
  readonly schedule?: AlarmSchedule | undefined;
}

/** How one daemon run went. */
export interface RunOutcome {
  /** When it started, ISO 8601. */
  readonly at: string;
  /** How long it took, in milliseconds. */
  readonly ms: number;
  /** How the run ended (its summary's `ended`), or `"failed"`. */
  readonly ended: string;
  /** Whether it saw the end of the log. */
  readonly caughtUp: boolean;
  /** The D1 queries it sent; `undefined` when it failed. */
  readonly queries: number | undefined;
  /** The error's message, when it failed. */
  readonly error: string | undefined;
  /** The rebuilds it switched live (`name@version`). */
  readonly switched: readonly string[];
  /** After a failure: the delay before the next attempt, in milliseconds (it doubles per failure in a row, up to the cap). */
  readonly retryInMs: number | undefined;
}

/** Where a daemon stands, as `status()` answers. */
export interface DaemonStatus {
  /** The daemon's name. */
  readonly name: string;
  /** `running` now, `backingOff` after failures, `paused`, or `idle`. */
  readonly state: "idle" | "running" | "backingOff" | "paused";
  /** Whether work was notified that no run has taken yet. */
  readonly pending: boolean;
  /** Failed runs in a row (0 after a run that worked). */
  readonly attempts: number;
  /** The last failure's message, while backing off. */
  readonly lastError: string | undefined;
  /** When the next run is due; `undefined` when none is scheduled. */
  readonly nextRunAt: Date | undefined;
  /** Runs so far. */
  readonly runs: number;
  /** The last run. */
  readonly lastRun: RunOutcome | undefined;
}
