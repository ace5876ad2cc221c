// The projection daemon as a Durable Object class to extend (decision 0025):
// declare the projection once in the constructor, export the class, bind it,
// and call `notify()` after appends; the cron calls `poke()` as a safety net.
import { DurableObject } from "cloudflare:workers";
import { AlarmSchedule } from "./alarm-schedule.js";
import { ProjectionDaemon } from "./daemon.js";
import type { DaemonOptions, DaemonStatus } from "./types.js";

/**
 * A SQLite-backed Durable Object that runs one projection (a runner or a
 * group) by itself: woken by `notify()` after appends, one run at a time,
 * chained across invocations until caught up, retried with backoff when a
 * run fails. Declare it under `new_sqlite_classes` in wrangler's migrations,
 * and address it by name (`idFromName("ledger")`): one object per projection.
 *
 * @example
 * ```ts
 * export class LedgerDaemon extends ProjectionDaemonObject<Env> {
 *   constructor(ctx: DurableObjectState, env: Env) {
 *     super(ctx, env, { name: "ledger", projection: ledgerProjections(env.DB) });
 *   }
 * }
 * // after an append:
 * ctx.waitUntil(env.LEDGER_DAEMON.get(env.LEDGER_DAEMON.idFromName("ledger")).notify(position));
 * ```
 */
export class ProjectionDaemonObject<Env = unknown> extends DurableObject<Env> {
  readonly #daemon: ProjectionDaemon;

  /** Checks `options`; arms the alarm for work that was scheduled before the object was evicted. */
  constructor(ctx: DurableObjectState, env: Env, options: DaemonOptions) {
    super(ctx, env);
    const schedule = options.schedule ?? new AlarmSchedule(ctx.storage);
    this.#daemon = new ProjectionDaemon(ctx.storage, { ...options, schedule });
    void ctx.blockConcurrencyWhile(() => schedule.arm());
  }

  /** After an append: asks for a run (coalesced with any under way); cheap, and safe to leave to `waitUntil`. */
  async notify(position?: number): Promise<void> {
    await this.#daemon.notify(position);
  }

  /** The cron's safety net: as `notify()`, so that a lost notify is only as stale as the cron. */
  async poke(): Promise<void> {
    await this.#daemon.notify();
  }

  /** Runs at once, even while backing off after failures. */
  async wake(): Promise<void> {
    await this.#daemon.wake();
  }

  /** Stops scheduling runs until `resume()`. */
  async pause(): Promise<void> {
    await this.#daemon.pause();
  }

  /** Schedules runs again after `pause()`. */
  async resume(): Promise<void> {
    await this.#daemon.resume();
  }

  /** Where the daemon stands. */
  status(): DaemonStatus {
    return this.#daemon.status();
  }

  /** Runs the projection when its job is due, then schedules the next run. */
  override async alarm(): Promise<void> {
    await this.#daemon.alarm();
  }
}
