// The arguments of the store calls, checked once before any query: a name
// and a signal (`load`, `reset`), a save's position, condition and version
// fence. Built on validate.ts's single-value checks and the store's types.
import type { VersionFence } from "./store.js";
import { CheckpointRangeError, type CheckpointOperation } from "./errors.js";
import { checkName, checkPosition, checkOptions, checkSignal, versionCheckpoint, checkVersion } from "./validate.js";

/** A name and a signal, checked: the arguments of `load` and `reset`. */
export interface NamedArguments {
  readonly name: string;
  readonly signal: AbortSignal | undefined;
}

/** A save's arguments, checked: `expected` is a position, `null` (none yet) or `undefined` (no condition). */
export interface SaveArguments extends NamedArguments {
  readonly position: number;
  readonly expected: number | null | undefined;
  readonly fence?: VersionFence | undefined;
}

/** Checks `(name, options?)` where options holds only a signal. */
export function parseNamed(
  operation: CheckpointOperation,
  name: unknown,
  options: { readonly signal?: AbortSignal | undefined } | undefined,
): NamedArguments {
  const valid = checkName(operation, name);
  return { name: valid, signal: checkSignal(operation, valid, checkOptions(operation, valid, options).signal) };
}

/** Checks a fence given with a commit to `checkpoint`: a plain object naming that checkpoint's version. */
export function checkFence(operation: CheckpointOperation, checkpoint: string, value: unknown): VersionFence | undefined {
  if (value === undefined) return undefined;
  const fence = checkOptions<Record<string, unknown>>(operation, checkpoint, value as Record<string, unknown>, "options.fence");
  const name = checkName(operation, fence.name, "options.fence.name");
  const version = checkVersion(operation, name, fence.version, "options.fence.version");
  if (fence.state !== "live" && fence.state !== "building") {
    throw new CheckpointRangeError(operation, checkpoint, "options.fence.state", `must be "live" or "building", got ${JSON.stringify(fence.state)}`);
  }
  const own = fence.state === "live" ? name : versionCheckpoint(name, version);
  if (own !== checkpoint) {
    throw new CheckpointRangeError(operation, checkpoint, "options.fence", `a ${fence.state} version's checkpoint is ${JSON.stringify(own)}, not ${JSON.stringify(checkpoint)}`);
  }
  return { name, version, state: fence.state };
}

/** Checks `(name, position, options?)` with `expected`, `fence` and `signal` in options. */
export function parseSave(
  operation: CheckpointOperation,
  name: unknown,
  position: unknown,
  options: { readonly expected?: number | null | undefined; readonly fence?: VersionFence | undefined; readonly signal?: AbortSignal | undefined } | undefined,
): SaveArguments {
  const valid = checkName(operation, name);
  const at = checkPosition(operation, valid, position);
  const { expected, signal, fence } = checkOptions(operation, valid, options);
  return {
    name: valid,
    fence: checkFence(operation, valid, fence),
    position: at,
    expected: expected === undefined || expected === null ? expected : checkPosition(operation, valid, expected, "options.expected"),
    signal: checkSignal(operation, valid, signal),
  };
}
