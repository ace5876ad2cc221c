// Cloudflare Queues as a wake-up for the ledger's projections. Queues deliver
// at least once and in no particular order, so a message never carries the
// events to apply: it only says "the log has an append up to this position".
// The consumer runs the projection group, which reads its events from the log
// in order and commits them exactly once (checkpoint and writes in one
// transaction, one lease for the group): a duplicate, late or reordered
// message can at worst cost one check. An append sends a message only when
// its own run did not get past it, so most appends send none.
// In your project, import from "@synapse-es/checkpointstore-d1".
import { D1CheckpointStore, QueryBudget, type GroupRunSummary } from "../../src/index.js";
import { DAILY_TOTALS } from "./daily-totals.js";
import type { Env } from "./env.js";
import { BALANCES, catchUp, ledgerProjections, QUERY_BUDGET } from "./ledger.js";

/** A wake-up message: the newest position of one append. Never the events themselves. */
export interface Wake {
  readonly position: number;
}

/** What the consumer did with a batch. */
export type WakeOutcome =
  /** Every message's position was already projected: acked without a run (a redelivery, or a wake another run answered). */
  | "applied"
  /** Ran the group, which went past every message's position: acked. */
  | "ran"
  /** The run ended before every message's position (budget, another run's lease): retried later. */
  | "behind"
  /** The run or the check failed: retried later. */
  | "failed";

/** The checkpoints a wake is about: the group's projections (ledgerProjections). */
const PROJECTIONS = [BALANCES, DAILY_TOTALS] as const;

/**
 * Runs the projections after an append (as the Worker did before it had a
 * queue), and sends a wake-up naming the append's newest position only when
 * that run did not get past it: it failed, ended on its query budget, or
 * yielded to another run that may not finish. In the common case no message
 * is sent at all; when one is, the append has committed, so the events it
 * names are in the log before any consumer can see it. A failed send is
 * logged, not the append's failure: the cron still catches up. Without the
 * binding no message is sent.
 */
export async function projectAppend(env: Env, positions: readonly number[]): Promise<void> {
  let caughtUp = false;
  try {
    caughtUp = (await catchUp(env.DB)).caughtUp;
  } catch (error) {
    console.error("projection failed", error);
  }
  if (caughtUp || env.LEDGER_WAKE === undefined || positions.length === 0) return;
  try {
    await env.LEDGER_WAKE.send({ position: Math.max(...positions) });
  } catch (error) {
    console.error("wake-up not sent", error);
  }
}

/** A message's position: a non-negative safe integer, or undefined for a body that is not a wake-up. */
function positionOf(body: unknown): number | undefined {
  const position = typeof body === "object" && body !== null ? (body as Record<string, unknown>).position : undefined;
  return typeof position === "number" && Number.isSafeInteger(position) && position >= 0 ? position : undefined;
}

/**
 * Whether every event up to `position` is projected, by every projection of
 * the group: the checkpoints and the first event beyond the lowest of them,
 * up to `position`, in one round trip (two when this isolate has not seen
 * the checkpoints yet). Asked of the log, not of the checkpoints alone: a
 * position the log does not have (a database restored from a backup) is not
 * waited for forever.
 */
async function applied(db: D1Database, position: number): Promise<boolean> {
  const { rows } = await new D1CheckpointStore(db).loadManyAndQuery<{ position: number }>(PROJECTIONS, (after) =>
    db.prepare("SELECT position FROM events WHERE position > ?1 AND position <= ?2 ORDER BY position LIMIT 1").bind(after, position),
  );
  return rows.length === 0;
}

/** The delay before a batch is delivered again: 2, 4, 8, … seconds with its attempts, at most a minute. */
export function retryDelay(attempts: number): number {
  return Math.min(60, 2 ** Math.max(1, attempts));
}

/**
 * The queue consumer: at most one run of the projection group per batch,
 * within the same query budget as the cron, and one ack or one retry for the
 * whole batch (its messages are interchangeable).
 *
 * - Every message names a position already projected (a redelivery, a
 *   message behind another): acked after one check, no run.
 * - Otherwise the group runs. Acked if it caught up, or got past every
 *   message's position; else (it ended on the budget, or another run holds
 *   the lease) retried with a delay: the redelivery checks again, and most
 *   often finds the work done.
 * - A failure (D1 down, a projection that stops) is logged and retried with
 *   a growing delay. The messages are never needed for correctness: one that
 *   runs out of retries is dropped, and the cron catches up.
 */
export async function consumeWakes(batch: MessageBatch, env: Env): Promise<WakeOutcome> {
  const positions = batch.messages.map((message) => positionOf(message.body));
  // A body that is not a wake-up still wakes the group, but names no position to skip on.
  const known = positions.filter((position) => position !== undefined);
  const unknown = positions.length - known.length;
  if (unknown > 0) console.warn(`${unknown} of ${positions.length} messages are not wake-ups: running without a position to skip on`);
  const target = unknown === 0 ? Math.max(0, ...known) : undefined;
  const attempts = Math.max(1, ...batch.messages.map((message) => message.attempts));
  try {
    if (target !== undefined && (await applied(env.DB, target))) {
      batch.ackAll();
      return "applied";
    }
    const summary: GroupRunSummary = await ledgerProjections(env.DB).run({ budget: new QueryBudget(QUERY_BUDGET) });
    if (summary.caughtUp || target === undefined || (await applied(env.DB, target))) {
      batch.ackAll();
      return "ran";
    }
    console.log(`projections behind the wake-ups (run ended: ${summary.ended}): retrying`);
    batch.retryAll({ delaySeconds: retryDelay(attempts) });
    return "behind";
  } catch (error) {
    console.error("wake-up run failed: retrying", error);
    batch.retryAll({ delaySeconds: retryDelay(attempts) });
    return "failed";
  }
}
