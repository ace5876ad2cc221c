// The run lease option, checked: a holder id and a time to live, with the
// default and the ceiling. The SQL that claims and lets go of a lease is the
// D1 store's (d1/leases.ts); what a lease is, is core/store.ts's.
import { CheckpointTypeError, type CheckpointOperation } from "./errors.js";
import { checkInteger, checkOptions } from "./validate.js";
import { type RunLease } from "./store.js";

/** The default lease: 30 s, longer than a run of 8 batches takes on D1. */
export const DEFAULT_LEASE_TTL_MS = 30_000;

/** The longest lease: one hour. */
export const MAX_LEASE_TTL_MS = 3_600_000;

/**
 * Checks a lease: a plain object with a holder id of 1 to 128 characters and
 * a whole number of milliseconds from 1 to an hour. Errors name `operation`
 * (the method that was called) and `argument` (where the lease was given).
 */
export function checkLease(operation: CheckpointOperation, name: string, value: unknown, argument: string): RunLease {
  if (value === undefined) throw new CheckpointTypeError(operation, name, argument, "must be an object { holder, ttlMs }");
  const { holder, ttlMs } = checkOptions<{ holder?: unknown; ttlMs?: unknown }>(operation, name, value as object, argument, ["holder", "ttlMs"]);
  if (typeof holder !== "string" || holder.length === 0 || holder.length > 128) {
    throw new CheckpointTypeError(operation, name, `${argument}.holder`, "must be a string of 1 to 128 characters");
  }
  return { holder, ttlMs: checkInteger(operation, name, ttlMs, `${argument}.ttlMs`, { min: 1, max: MAX_LEASE_TTL_MS, fallback: DEFAULT_LEASE_TTL_MS }) };
}
