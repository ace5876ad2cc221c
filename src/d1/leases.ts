// Run leases: when many invocations start a run of the same projection at
// once (every append starts one), the first claims a short lease in the same
// round trip as its load, and the others stop after that one round trip,
// leaving a note ("pending") that makes the holder look again before it lets
// go. Exactly-once never depends on the lease: commits stay conditional.
// A lease let go is expired in place (expires_at = 0), not deleted: each run
// then updates one row to claim and one to let go, 2 rows written instead of
// the 3 of an insert (a row and its index entry) and a delete (decision 0026).
import { NOW_MS_SQL } from "../sql/checkpoints.js";
import type { D1Client } from "./client.js";
import { type RunLease } from "../core/store.js";

/**
 * Claims the lease unless another run holds one that has not expired:
 * ?1 name, ?2 holder, ?3 ttl ms.
 */
export const CLAIM_SQL =
  `INSERT INTO projection_leases (name, holder, expires_at, pending) VALUES (?1, ?2, ${NOW_MS_SQL} + ?3, 0) ` +
  "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, pending = 0 " +
  `WHERE projection_leases.expires_at <= ${NOW_MS_SQL}`;

/**
 * After the claim: when another run holds the lease, notes that work is
 * pending and returns the holder (a row means "not ours"). ?1 name, ?2 holder.
 */
export const YIELD_SQL = "UPDATE projection_leases SET pending = 1 WHERE name = ?1 AND holder <> ?2 RETURNING holder";

/** A claim as sent at the start of a run, in its load's batch: claim ({@link CLAIM_SQL}), then note work pending if another run holds it ({@link YIELD_SQL}). */
export function claimStatements(db: D1Client, name: string, lease: RunLease): D1PreparedStatement[] {
  return [db.prepare(CLAIM_SQL).bind(name, lease.holder, lease.ttlMs), db.prepare(YIELD_SQL).bind(name, lease.holder)];
}

/** Lets go of the lease (expires it in place) unless work was noted pending meanwhile: ?1 name, ?2 holder. */
export const RELEASE_SQL = "UPDATE projection_leases SET expires_at = 0 WHERE name = ?1 AND holder = ?2 AND pending = 0";

/**
 * After the release: when the lease is still ours (work was pending), clears
 * the note and renews it, and returns a row ("keep going"). ?1 name, ?2 holder, ?3 ttl ms.
 */
export const RENEW_SQL =
  `UPDATE projection_leases SET pending = 0, expires_at = ${NOW_MS_SQL} + ?3 WHERE name = ?1 AND holder = ?2 AND expires_at > 0 RETURNING holder`;

/** Lets go of the lease whatever was noted: when a run ends early (its batch budget, a conflict, an error). ?1 name, ?2 holder. */
export const DROP_SQL = "UPDATE projection_leases SET expires_at = 0, pending = 0 WHERE name = ?1 AND holder = ?2";
