// The one retry loop of the package, and the policy it follows. Every D1 call
// of the store goes through `withRetry`, which decides, per kind of call,
// whether a failure is sent again and what the caller is told about a write
// that may have been applied (docs/decisions/0006).
import { CheckpointStoreError, D1OperationError, messageOf, type CheckpointOperation } from "../core/errors.js";
import { QueryBudgetError } from "../core/query-budget.js";
import { checkFunction, checkInteger, checkOptions, keysOf } from "../core/validate.js";
import { sleep } from "../core/sleep.js";

/**
 * The D1 error messages Cloudflare documents as transient and worth a retry
 * (D1 "Retry queries" best practice), plus the transient resolution failure
 * Workers report while a database is moving.
 *
 * @category Stores
 */
export const TRANSIENT_D1_MESSAGES: readonly string[] = Object.freeze([
  "Network connection lost",
  "storage caused object to be reset",
  "reset because its code was updated",
  "Cannot resolve D1 DB due to transient issue",
]);

/**
 * Whether a D1 error is one of {@link TRANSIENT_D1_MESSAGES}, looking through
 * `cause` chains.
 *
 * @example
 * ```ts
 * const store = new D1CheckpointStore(env.DB, {
 *   retry: { isTransient: (error) => isTransientD1Error(error) || String(error).includes("overloaded") },
 * });
 * ```
 *
 * @category Stores
 */
export function isTransientD1Error(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current !== undefined && depth < 8; depth++) {
    const message = messageOf(current);
    if (TRANSIENT_D1_MESSAGES.some((fragment) => message.includes(fragment))) return true;
    current = current instanceof Error ? current.cause : undefined;
  }
  return false;
}

/**
 * How the store retries transient D1 errors. Every field is optional; the
 * defaults are 5 attempts, 50 ms doubling to at most 2,000 ms, full jitter,
 * {@link isTransientD1Error} and `Math.random`.
 *
 * @category Stores
 */
export interface RetryOptions {
  /** Attempts in all, the first included: 1 to 20, default 5. */
  readonly attempts?: number | undefined;
  /** Backoff before the second attempt, in milliseconds (0 to 60,000); doubles per attempt. Default 50. */
  readonly baseDelayMs?: number | undefined;
  /** The longest backoff, in milliseconds (0 to 600,000). Default 2,000. */
  readonly maxDelayMs?: number | undefined;
  /** Which errors to retry. Default {@link isTransientD1Error}. */
  readonly isTransient?: ((error: unknown) => boolean) | undefined;
  /** The jitter source, a number in [0, 1). Default `Math.random`. */
  readonly random?: (() => number) | undefined;
}

const RETRY_KEYS = keysOf<RetryOptions>()(["attempts", "baseDelayMs", "maxDelayMs", "isTransient", "random"]);

/** A resolved {@link RetryOptions}. */
export type RetryPolicy = Readonly<Required<{ [K in keyof RetryOptions]: NonNullable<RetryOptions[K]> }>>;

/** The default policy: 5 attempts, 50 ms doubling to at most 2 s, full jitter. */
export const DEFAULT_RETRY: RetryPolicy = Object.freeze({
  attempts: 5,
  baseDelayMs: 50,
  maxDelayMs: 2000,
  isTransient: isTransientD1Error,
  random: Math.random,
});

/** Checks the `retry` option of a store (or of `migrate`) and resolves it to a policy. */
export function resolveRetry(
  operation: CheckpointOperation,
  value: RetryOptions | false | undefined,
): RetryPolicy {
  if (value === false) return Object.freeze({ ...DEFAULT_RETRY, attempts: 1 });
  const options = checkOptions(operation, undefined, value, "options.retry", RETRY_KEYS);
  const whole = (value: unknown, argument: keyof RetryOptions, max: number, fallback: number): number =>
    checkInteger(operation, undefined, value, `options.retry.${argument}`, { min: argument === "attempts" ? 1 : 0, max, fallback });
  return {
    attempts: whole(options.attempts, "attempts", 20, DEFAULT_RETRY.attempts),
    baseDelayMs: whole(options.baseDelayMs, "baseDelayMs", 60_000, DEFAULT_RETRY.baseDelayMs),
    maxDelayMs: whole(options.maxDelayMs, "maxDelayMs", 600_000, DEFAULT_RETRY.maxDelayMs),
    isTransient: checkFunction(operation, undefined, options.isTransient, "options.retry.isTransient") ?? DEFAULT_RETRY.isTransient,
    random: checkFunction(operation, undefined, options.random, "options.retry.random") ?? DEFAULT_RETRY.random,
  };
}

/**
 * The delay before attempt `attempt + 1`: "full jitter", a random share of
 * `min(maxDelayMs, baseDelayMs * 2^(attempt - 1))`.
 */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(policy.random() * ceiling);
}

/** What a check after a possibly lost write found. */
export type CheckVerdict<T> =
  /** The write is there: the call succeeds with `value`. */
  | { readonly landed: true; readonly value: T }
  /** The write is not there: send it again. */
  | { readonly landed: false }
  /** The check cannot tell: the outcome is unknown; `found` says what it saw, as a clause ("the checkpoint is now at position 7"). */
  | { readonly landed: "unknown"; readonly found: string };

/**
 * One D1 call as the retry loop sees it. `kind` says what may be sent again:
 *
 * - `"read"`: no effect; sent again on a transient error.
 * - `"idempotent"`: a write that has the same effect when sent twice (an
 *   upsert, a delete, `CREATE … IF NOT EXISTS`); sent again.
 * - `"checked"`: a conditional write; after a transient error `check` decides
 *   whether it landed, must be sent again, or cannot be told.
 * - `"once"`: a write that is never sent twice.
 */
export interface RetriedCall<T> {
  readonly operation: CheckpointOperation;
  readonly checkpoint: string | undefined;
  readonly signal: AbortSignal | undefined;
  readonly kind: "read" | "idempotent" | "checked" | "once";
  send(): Promise<T>;
  check?: (() => Promise<CheckVerdict<T>>) | undefined;
}

/**
 * Runs one D1 call under `policy`. What the caller is told:
 *
 * - success, or the store's own errors (a conflict, a corrupt row) as they are;
 * - otherwise a {@link D1OperationError} whose `outcomeUnknown` is `true`
 *   exactly when a write may have been applied: a transient error struck a
 *   write and nothing since showed that it did not land (a check that fails,
 *   a check that cannot tell, an abort during the backoff, a re-send that
 *   fails for another reason);
 * - the signal's reason when it aborts before anything that could have
 *   landed was sent.
 */
export async function withRetry<T>(policy: RetryPolicy, call: RetriedCall<T>): Promise<T> {
  const { operation, checkpoint, signal, kind } = call;
  let maybeLanded = false; // a write was sent and may have been applied
  let mustCheck = false; // a checked write must be checked before it is sent again
  let lastError: unknown;
  const unknownOutcome = (
    cause: unknown,
    attempts: number,
    details: { transient: boolean; aborted?: boolean; reason?: string },
  ): D1OperationError => new D1OperationError(operation, checkpoint, cause, { attempts, outcomeUnknown: true, ...details });

  for (let attempt = 1; ; attempt++) {
    let sending = false;
    try {
      signal?.throwIfAborted();
      if (mustCheck && call.check !== undefined) {
        const verdict = await call.check();
        if (verdict.landed === true) return verdict.value;
        if (verdict.landed === "unknown") {
          throw unknownOutcome(lastError, attempt, {
            transient: true,
            reason: `D1 failed (${messageOf(lastError)}) and ${verdict.found}, so whether this write was applied cannot be told`,
          });
        }
        maybeLanded = mustCheck = false; // still where it was: it did not land
      }
      sending = true;
      return await call.send();
    } catch (cause) {
      // The budget refused a re-send or a check: as when the attempts run out, a write that may have landed is unknown.
      if (cause instanceof QueryBudgetError && maybeLanded) {
        throw unknownOutcome(cause, attempt, { transient: true, reason: `D1 failed (${messageOf(lastError)}) and the query budget left no room to find out or send again` });
      }
      if (cause instanceof CheckpointStoreError) throw cause;
      if (signal?.aborted && cause === signal.reason) {
        if (!maybeLanded) throw cause;
        throw unknownOutcome(cause, attempt, {
          transient: true,
          aborted: true,
          reason: `aborted while retrying after D1 failed (${messageOf(lastError)})`,
        });
      }
      const transient = policy.isTransient(cause);
      if (sending && kind !== "read" && transient) maybeLanded = true;
      const again =
        transient &&
        attempt < policy.attempts &&
        (kind === "read" || kind === "idempotent" || (kind === "checked" && call.check !== undefined));
      if (!again) {
        throw new D1OperationError(operation, checkpoint, cause, { attempts: attempt, transient, outcomeUnknown: maybeLanded });
      }
      lastError = cause;
      mustCheck = kind === "checked" && maybeLanded;
      try {
        await sleep(backoffDelay(policy, attempt), signal);
      } catch (reason) {
        if (!maybeLanded) throw reason;
        throw unknownOutcome(reason, attempt, {
          transient: true,
          aborted: true,
          reason: `aborted while retrying after D1 failed (${messageOf(cause)})`,
        });
      }
    }
  }
}
