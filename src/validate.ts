import type { ListOptions } from "./checkpoint-store.js";
import { CheckpointRangeError, CheckpointTypeError, type CheckpointOperation } from "./errors.js";
import type { KeysetOptions } from "./keyset.js";
import { DEFAULT_RETRY, NO_RETRY, type RetryOptions, type RetryPolicy } from "./retry.js";

/** The longest checkpoint name, in bytes of UTF-8. */
export const MAX_NAME_BYTES = 1024;

/** The number of rows `names()` and `entries()` fetch per query unless told otherwise. */
export const DEFAULT_PAGE_SIZE = 1000;

/** The largest `pageSize` `names()` and `entries()` accept. */
export const MAX_PAGE_SIZE = 10_000;

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/** UTF-8 length of a well-formed string, without encoding it. */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff) {
      bytes += 4; // a surrogate pair: one code point above U+FFFF
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * Checks a checkpoint name (or a name-like bound such as `after`): a non-empty
 * string of at most {@link MAX_NAME_BYTES} bytes of UTF-8 with no lone
 * surrogate. D1 would store a lone surrogate as U+FFFD and the name would
 * never match again.
 */
export function checkName(
  operation: CheckpointOperation,
  value: unknown,
  argument = "name",
  { allowEmpty = false }: { allowEmpty?: boolean } = {},
): string {
  if (typeof value !== "string") {
    throw new CheckpointTypeError(operation, undefined, argument, `must be a string, got ${typeName(value)}`);
  }
  if (value.length === 0 && !allowEmpty) {
    throw new CheckpointRangeError(operation, undefined, argument, "must not be empty");
  }
  if (!value.isWellFormed()) {
    throw new CheckpointRangeError(
      operation,
      undefined,
      argument,
      "contains a lone surrogate (not valid Unicode; D1 would store U+FFFD instead)",
    );
  }
  if (value.length > MAX_NAME_BYTES / 3 && utf8Length(value) > MAX_NAME_BYTES) {
    throw new CheckpointRangeError(
      operation,
      undefined,
      argument,
      `is ${utf8Length(value)} bytes of UTF-8; at most ${MAX_NAME_BYTES} are allowed`,
    );
  }
  return value;
}

/**
 * Checks a position: a non-negative safe integer. D1 rejects `bigint`, stores
 * `NaN` and `Infinity` as NULL and `1.5` as REAL, and reads integers above
 * 2^53 back rounded; none of that may pass.
 */
export function checkPosition(
  operation: CheckpointOperation,
  checkpoint: string | undefined,
  value: unknown,
  argument = "position",
): number {
  if (typeof value !== "number") {
    const hint = typeof value === "bigint" ? " (bigint is not supported: positions are safe integers)" : "";
    throw new CheckpointTypeError(operation, checkpoint, argument, `must be a number, got ${typeName(value)}${hint}`);
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new CheckpointRangeError(
      operation,
      checkpoint,
      argument,
      `must be a non-negative safe integer (0 to ${Number.MAX_SAFE_INTEGER}), got ${value}`,
    );
  }
  return value;
}

/** Checks `expected`: a position, `null` (no checkpoint yet) or `undefined` (no condition). */
export function checkExpected(
  operation: CheckpointOperation,
  checkpoint: string,
  value: unknown,
): number | null | undefined {
  if (value === undefined || value === null) return value;
  return checkPosition(operation, checkpoint, value, "options.expected");
}

/** Checks an options argument: `undefined` or a plain object. */
export function checkOptions<T extends object>(
  operation: CheckpointOperation,
  checkpoint: string | undefined,
  value: T | undefined,
): T | Record<string, never> {
  const candidate: unknown = value;
  if (candidate === undefined) return {};
  if (typeof candidate !== "object" || candidate === null || Array.isArray(candidate)) {
    throw new CheckpointTypeError(operation, checkpoint, "options", `must be an object, got ${typeName(value)}`);
  }
  return candidate as T;
}

/** Checks `options.signal`: `undefined` or an `AbortSignal`. */
export function checkSignal(
  operation: CheckpointOperation,
  checkpoint: string | undefined,
  value: unknown,
): AbortSignal | undefined {
  if (value === undefined || value instanceof AbortSignal) return value;
  throw new CheckpointTypeError(
    operation,
    checkpoint,
    "options.signal",
    `must be an AbortSignal, got ${typeName(value)}`,
  );
}

/**
 * Checks an optional whole-number argument: `fallback` when `undefined`,
 * otherwise an integer from `min` to `max`.
 */
export function checkInteger(
  operation: CheckpointOperation,
  checkpoint: string | undefined,
  value: unknown,
  argument: string,
  range: { readonly min: number; readonly max: number; readonly fallback: number },
): number {
  if (value === undefined) return range.fallback;
  if (typeof value !== "number") {
    throw new CheckpointTypeError(operation, checkpoint, argument, `must be a number, got ${typeName(value)}`);
  }
  if (!Number.isInteger(value) || value < range.min || value > range.max) {
    throw new CheckpointRangeError(
      operation,
      checkpoint,
      argument,
      `must be an integer from ${range.min} to ${range.max}, got ${value}`,
    );
  }
  return value;
}

/** Checks an optional callback: `undefined` or a function. */
export function checkFunction(
  operation: CheckpointOperation,
  checkpoint: string | undefined,
  value: unknown,
  argument: string,
): void {
  if (value !== undefined && typeof value !== "function") {
    throw new CheckpointTypeError(operation, checkpoint, argument, `must be a function, got ${typeName(value)}`);
  }
}

/** Checks the options of `names()` and `entries()`. */
export function checkListOptions(
  operation: CheckpointOperation,
  options: ListOptions | undefined,
): KeysetOptions {
  const { pageSize, after, prefix, signal } = checkOptions(operation, undefined, options);
  return {
    pageSize: checkInteger(operation, undefined, pageSize, "options.pageSize", {
      min: 1,
      max: MAX_PAGE_SIZE,
      fallback: DEFAULT_PAGE_SIZE,
    }),
    after: after === undefined ? undefined : checkName(operation, after, "options.after", { allowEmpty: true }),
    prefix: prefix === undefined ? undefined : checkName(operation, prefix, "options.prefix", { allowEmpty: true }),
    signal: checkSignal(operation, undefined, signal),
  };
}

/** Checks the `retry` option of a store and resolves it to a policy. */
export function checkRetryOptions(value: RetryOptions | false | undefined): RetryPolicy {
  if (value === false) return NO_RETRY;
  const options = checkOptions("configure", undefined, value);
  const whole = (value: unknown, argument: string, min: number, max: number, fallback: number): number =>
    checkInteger("configure", undefined, value, `options.retry.${argument}`, { min, max, fallback });
  checkFunction("configure", undefined, options.isTransient, "options.retry.isTransient");
  checkFunction("configure", undefined, options.random, "options.retry.random");
  return {
    attempts: whole(options.attempts, "attempts", 1, 20, DEFAULT_RETRY.attempts),
    baseDelayMs: whole(options.baseDelayMs, "baseDelayMs", 0, 60_000, DEFAULT_RETRY.baseDelayMs),
    maxDelayMs: whole(options.maxDelayMs, "maxDelayMs", 0, 600_000, DEFAULT_RETRY.maxDelayMs),
    isTransient: options.isTransient ?? DEFAULT_RETRY.isTransient,
    random: options.random ?? DEFAULT_RETRY.random,
  };
}
