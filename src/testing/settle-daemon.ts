// Driving a projection daemon in tests: its alarms are run one after the
// other (each a run of its own) until nothing is due, instead of waiting for
// the clock. Pass `runDurableObjectAlarm` from `cloudflare:test`.
import type { DaemonStatus } from "../daemon/types.js";

/** A daemon object as a test reaches it: a stub of a `ProjectionDaemonObject`. */
export interface SettlingDaemon {
  status(): Promise<DaemonStatus>;
}

/**
 * Runs a daemon's alarms until no run is due (nothing scheduled, or only a
 * backoff later than `graceMs` from now) and resolves with the alarms it ran.
 * Rejects after `most` alarms (default 500), so a daemon that never settles
 * fails the test instead of hanging it.
 *
 * @example
 * ```ts
 * import { runDurableObjectAlarm } from "cloudflare:test";
 * await stub.notify();
 * await settleDaemon(stub, runDurableObjectAlarm);
 * ```
 */
export async function settleDaemon<Stub extends SettlingDaemon>(
  stub: Stub,
  runAlarm: (stub: Stub) => Promise<boolean>,
  { most = 500, graceMs = 500 }: { readonly most?: number; readonly graceMs?: number } = {},
): Promise<number> {
  for (let alarms = 0; alarms < most; alarms++) {
    const status = await stub.status();
    if (status.state !== "running" && (status.nextRunAt === undefined || status.nextRunAt.getTime() > Date.now() + graceMs)) return alarms;
    await runAlarm(stub);
  }
  throw new Error(`the daemon still had a run due after ${String(most)} alarms`);
}
