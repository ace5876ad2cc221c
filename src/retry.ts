import { CheckpointStoreError, D1OperationError, messageOf, type CheckpointOperation } from "./errors.js";

/**
 * The D1 error messages Cloudflare documents as transient and worth a retry
 * (D1 "Retry queries" best practice), plus the transient resolution failure
 * Workers report while a database is moving.
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
 */
export function isTransientD1Error(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current !== undefined && depth < 8; depth++) {
    const message = messageOf(current);
    if (TRANSIENT_D1_MESSAGES.some((fragment) => message.includes(fragment))) return true;
    current = current instanceof Error ? current.cause : undefined;
  }
  return false;
}

/** How the store retries transient D1 errors. */
export interface RetryOptions {
  /** Attempts in all, the first included: 1 to 20, default 5. */
  readonly attempts?: number | undefined;
  /** Backoff before the second attempt, in milliseconds; doubles per attempt. Default 50. */
  readonly baseDelayMs?: number | undefined;
  /** The longest backoff, in milliseconds. Default 2,000. */
  readonly maxDelayMs?: number | undefined;
  /** Which errors to retry. Default {@link isTransientD1Error}. */
  readonly isTransient?: ((error: unknown) => boolean) | undefined;
  /** The jitter source, a number in [0, 1). Default `Math.random`. */
  readonly random?: (() => number) | undefined;
}

/** A resolved {@link RetryOptions}. */
export interface RetryPolicy {
  /** Attempts in all, the first included. */
  readonly attempts: number;
  /** Backoff before the second attempt, in milliseconds. */
  readonly baseDelayMs: number;
  /** The longest backoff, in milliseconds. */
  readonly maxDelayMs: number;
  /** Which errors are retried. */
  readonly isTransient: (error: unknown) => boolean;
  /** The jitter source, a number in [0, 1). */
  readonly random: () => number;
}

/** The default policy: 5 attempts, 50 ms doubling to at most 2 s, full jitter. */
export const DEFAULT_RETRY: RetryPolicy = Object.freeze({
  attempts: 5,
  baseDelayMs: 50,
  maxDelayMs: 2000,
  isTransient: isTransientD1Error,
  random: Math.random,
});

/** Retry off: one attempt. */
export const NO_RETRY: RetryPolicy = Object.freeze({ ...DEFAULT_RETRY, attempts: 1 });

/**
 * The delay before attempt `attempt + 1`: "full jitter", a random share of
 * `min(maxDelayMs, baseDelayMs * 2^(attempt - 1))`.
 */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(policy.random() * ceiling);
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Runs one D1 call, retrying transient errors per `policy` when `retryable`;
 * what finally fails is wrapped in a {@link D1OperationError} (errors the
 * store raised itself pass through). The signal is checked before every
 * attempt and cuts a backoff short.
 */
export async function withRetry<T>(
  policy: RetryPolicy,
  operation: CheckpointOperation,
  checkpoint: string | undefined,
  signal: AbortSignal | undefined,
  call: () => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    try {
      return await call();
    } catch (cause) {
      if (cause instanceof CheckpointStoreError) throw cause;
      const transient = policy.isTransient(cause);
      if (!transient || attempt >= policy.attempts) {
        throw new D1OperationError(operation, checkpoint, cause, { attempts: attempt, transient, outcomeUnknown: false });
      }
      await sleep(backoffDelay(policy, attempt), signal);
    }
  }
}
