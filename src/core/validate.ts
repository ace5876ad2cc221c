// The single-value checks every public method runs on its arguments before
// any query: names, positions, integers, options objects, signals, functions.
// It imports only the error classes. The checks of a whole call's arguments
// (`parse…`) build on these: core/arguments.ts for the store's calls, and
// each feature's own file for its options.
import { CheckpointRangeError, CheckpointTypeError, CorruptCheckpointError, type CheckpointOperation } from "./errors.js";

/**
 * The longest checkpoint name, in bytes of UTF-8.
 *
 * @category Limits
 */
export const MAX_NAME_BYTES = 1024;

/** What a value is, for an input error: `null`, `array`, or its `typeof`. */
export function typeName(value: unknown): string {
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

/** A stored position as a number, or a {@link CorruptCheckpointError}: never a rounded or negative one. */
export function toPosition(operation: CheckpointOperation, name: string, value: unknown): number {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  throw new CorruptCheckpointError(operation, name, value);
}

/** The most milliseconds from the epoch a `Date` holds, either way. */
const MAX_DATE_MS = 8.64e15;

/** Whether a stored value is a time in milliseconds that a `Date` can hold. */
export function isTime(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value) && Math.abs(value) <= MAX_DATE_MS;
}

/**
 * Checks an options argument: `undefined` or a plain object (not an array, a
 * `Date`, a `Map` or another class's instance). With `known`, a key it does
 * not list is refused too, so that a misspelt option is not silently ignored.
 */
export function checkOptions<T extends object>(
  operation: CheckpointOperation,
  checkpoint: string | undefined,
  value: T | undefined,
  argument = "options",
  known?: readonly string[],
): Partial<T> {
  const candidate: unknown = value;
  if (candidate === undefined) return {};
  if (typeof candidate !== "object" || candidate === null || Array.isArray(candidate)) {
    throw new CheckpointTypeError(operation, checkpoint, argument, `must be an object, got ${typeName(value)}`);
  }
  const prototype: unknown = Object.getPrototypeOf(candidate);
  if (prototype !== Object.prototype && prototype !== null) {
    const kind = (candidate as { constructor?: { name?: unknown } }).constructor?.name;
    throw new CheckpointTypeError(operation, checkpoint, argument, `must be a plain object, got ${typeof kind === "string" ? kind : "an instance"}`);
  }
  const unknown = known === undefined ? undefined : Object.keys(candidate).find((key) => !known.includes(key));
  if (unknown !== undefined) {
    throw new CheckpointTypeError(operation, checkpoint, argument, `has an unknown key ${JSON.stringify(unknown)} (known: ${known?.join(", ")})`);
  }
  return candidate;
}

/**
 * The keys of an options type as a runtime list, for `checkOptions`' `known`:
 * `keysOf<SaveOptions>()(["signal", "budget", "expected", "fence"])`. A key
 * the type does not have, or one of its keys the list leaves out, does not
 * compile, so the list cannot drift from the type it checks.
 */
export function keysOf<T>(): <const K extends readonly (keyof T & string)[]>(
  keys: K & ([Exclude<keyof T & string, K[number]>] extends [never] ? unknown : { readonly missing: Exclude<keyof T & string, K[number]> }),
) => readonly string[] {
  return (keys) => Object.freeze([...keys]);
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/**
 * Checks a SQL identifier the store writes into a statement (a table or
 * column name): letters, digits and `_`, at most 64, not starting with a
 * digit, so that it needs no escaping and cannot inject anything.
 */
export function checkIdentifier(operation: CheckpointOperation, checkpoint: string | undefined, value: unknown, argument: string): string {
  if (typeof value !== "string") throw new CheckpointTypeError(operation, checkpoint, argument, `must be a table or column name (a string), got ${typeName(value)}`);
  if (!IDENTIFIER.test(value)) {
    throw new CheckpointRangeError(operation, checkpoint, argument, `must be an identifier of letters, digits and _ (at most 64, not starting with a digit), got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Checks `options.signal`: `undefined` or an `AbortSignal`. */
export function checkSignal(
  operation: CheckpointOperation,
  checkpoint: string | undefined,
  value: unknown,
): AbortSignal | undefined {
  if (value === undefined || value instanceof AbortSignal) return value;
  throw new CheckpointTypeError(operation, checkpoint, "options.signal", `must be an AbortSignal, got ${typeName(value)}`);
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

/** Checks a callback: a function, or `undefined` unless `required`. */
export function checkFunction<F extends (...args: never[]) => unknown>(
  operation: CheckpointOperation,
  checkpoint: string | undefined,
  value: F | undefined,
  argument: string,
  required: true,
): F;
export function checkFunction<F extends (...args: never[]) => unknown>(
  operation: CheckpointOperation,
  checkpoint: string | undefined,
  value: F | undefined,
  argument: string,
  required?: boolean,
): F | undefined;
export function checkFunction<F extends (...args: never[]) => unknown>(
  operation: CheckpointOperation,
  checkpoint: string | undefined,
  value: F | undefined,
  argument: string,
  required = false,
): F | undefined {
  const candidate: unknown = value;
  if (candidate === undefined && !required) return undefined;
  if (typeof candidate !== "function") {
    throw new CheckpointTypeError(operation, checkpoint, argument, `must be a function, got ${typeName(value)}`);
  }
  return value;
}

/**
 * Checks that `value` is an object with every method in `methods` (a store
 * the runner can drive, a D1 binding): a clear `CheckpointTypeError` naming
 * `argument` otherwise.
 */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the shape it asked for
export function checkMethods<T extends object>(
  operation: CheckpointOperation,
  checkpoint: string | undefined,
  value: unknown,
  argument: string,
  methods: readonly string[],
  what: string,
): T {
  if (!hasMethods(value, methods)) throw new CheckpointTypeError(operation, checkpoint, argument, `must be ${what}`);
  return value as T;
}

/** Whether `value` has every method in `methods`. */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the interface those methods make the value
export function hasMethods<T extends object = object>(value: unknown, methods: readonly string[]): value is T {
  return typeof value === "object" && value !== null && methods.every((method) => typeof (value as Record<string, unknown>)[method] === "function");
}

/** Checks an optional boolean option. */
export function checkBoolean(
  operation: CheckpointOperation,
  checkpoint: string | undefined,
  value: unknown,
  argument: string,
  fallback: boolean,
): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") {
    throw new CheckpointTypeError(operation, checkpoint, argument, `must be a boolean, got ${typeName(value)}`);
  }
  return value;
}

/** The checkpoint of a version that is not live. */
export function versionCheckpoint(name: string, version: number): string {
  return `${name}@${version}`;
}

/** Checks a version number: a safe integer from 1. */
export function checkVersion(operation: CheckpointOperation, name: string, value: unknown, argument = "version"): number {
  if (value === undefined) throw new CheckpointTypeError(operation, name, argument, "must be a number, got undefined");
  // "name@version" is a rebuild's checkpoint: a versioned projection's own name may not look like one.
  if (name.includes("@")) throw new CheckpointRangeError(operation, name, "name", "a projection with versions may not have @ in its name (its rebuilds' checkpoints are name@version)");
  const version = checkInteger(operation, name, value, argument, { min: 1, max: Number.MAX_SAFE_INTEGER, fallback: 1 });
  checkName(operation, versionCheckpoint(name, version), argument);
  return version;
}

/**
 * Checks a list of writes: a dense array whose every element passes
 * `isWrite`. Returns a copy, so that the caller changing its array later
 * cannot change what is committed (or re-sent on a retry).
 */
export function checkWrites<W>(
  operation: CheckpointOperation,
  checkpoint: string,
  value: unknown,
  isWrite: (item: unknown) => item is W,
  what: string,
  argument = "statements",
): W[] {
  if (!Array.isArray(value)) {
    throw new CheckpointTypeError(operation, checkpoint, argument, `must be an array of ${what}, got ${typeName(value)}`);
  }
  const items = value as unknown[];
  const copy: W[] = [];
  for (let index = 0; index < items.length; index++) {
    const item = index in items ? items[index] : undefined;
    if (!isWrite(item)) {
      const got = index in items ? typeName(item) : "a hole (sparse array)";
      const at = argument === "statements" ? `statements[${index}]` : argument;
      throw new CheckpointTypeError(operation, checkpoint, at, `must be a ${what}, got ${got}`);
    }
    copy.push(item);
  }
  return copy;
}
