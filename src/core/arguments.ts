// The arguments of the store calls, checked once before any query: a name
// and a signal (`load`, `reset`), a save's position, condition and version
// fence. Built on validate.ts's single-value checks and the store's types.
import type { CommitOptions, ListOptions, LoadAndQueryOptions, LoadResult, OperationOptions, ReplayOptions, SaveOptions, VersionFence } from "./store.js";
import { CheckpointRangeError, type CheckpointOperation } from "./errors.js";
import { checkName, checkOptions, checkPosition, checkSignal, checkVersion, keysOf, versionCheckpoint } from "./validate.js";

// Every options object refuses a key it does not know (a misspelt option is a
// CheckpointTypeError, never silently ignored): these are the keys of the
// store calls' options, each list checked against its type by keysOf.
/** The keys of {@link OperationOptions}. */
export const OPERATION_KEYS = keysOf<OperationOptions>()(["signal", "budget"]);
/** The keys of {@link SaveOptions}. */
export const SAVE_KEYS = keysOf<SaveOptions>()(["signal", "budget", "expected", "fence"]);
/** The keys of {@link CommitOptions}. */
export const COMMIT_KEYS = keysOf<CommitOptions>()(["signal", "budget", "expected", "fence", "parked"]);
/** The keys of {@link ReplayOptions}. */
export const REPLAY_KEYS = keysOf<ReplayOptions>()(["signal", "budget", "fence"]);
/** The keys of {@link ListOptions}. */
export const LIST_KEYS = keysOf<ListOptions>()(["signal", "budget", "pageSize", "after", "prefix"]);
/** The keys of {@link LoadAndQueryOptions} (and of the group's `loadManyAndQuery` options). */
export const LOAD_AND_QUERY_KEYS = keysOf<LoadAndQueryOptions>()(["signal", "budget", "lease"]);
/** The keys of `releaseLease`'s options. */
export const RELEASE_KEYS = keysOf<OperationOptions & { readonly drop?: boolean | undefined }>()(["signal", "budget", "drop"]);
/** The keys of a {@link VersionFence}. */
const FENCE_KEYS = keysOf<VersionFence>()(["name", "version", "state"]);

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

/** Checks `(name, options?)`: the name, and options with no key outside `known` (default: a signal and a budget). */
export function parseNamed(
  operation: CheckpointOperation,
  name: unknown,
  options: { readonly signal?: AbortSignal | undefined } | undefined,
  known: readonly string[] = OPERATION_KEYS,
): NamedArguments {
  const valid = checkName(operation, name);
  return { name: valid, signal: checkSignal(operation, valid, checkOptions(operation, valid, options, "options", known).signal) };
}

/** Checks a fence given with a commit to `checkpoint`: a plain object naming that checkpoint's version. */
export function checkFence(operation: CheckpointOperation, checkpoint: string, value: unknown): VersionFence | undefined {
  if (value === undefined) return undefined;
  const fence = checkOptions<Record<string, unknown>>(operation, checkpoint, value as Record<string, unknown>, "options.fence", FENCE_KEYS);
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

/** Checks `(name, position, options?)` with `expected`, `fence` and `signal` in options, and no key outside `known`. */
export function parseSave(
  operation: CheckpointOperation,
  name: unknown,
  position: unknown,
  options: { readonly expected?: number | null | undefined; readonly fence?: VersionFence | undefined; readonly signal?: AbortSignal | undefined } | undefined,
  known: readonly string[],
): SaveArguments {
  const valid = checkName(operation, name);
  const at = checkPosition(operation, valid, position);
  const { expected, signal, fence } = checkOptions(operation, valid, options, "options", known);
  return {
    name: valid,
    fence: checkFence(operation, valid, fence),
    position: at,
    expected: expected === undefined || expected === null ? expected : checkPosition(operation, valid, expected, "options.expected"),
    signal: checkSignal(operation, valid, signal),
  };
}

/**
 * Whether a save's condition holds for the checkpoint as loaded: `null` for
 * none, a position for that position, where none counts as one at 0.
 */
export function conditionHolds(expected: number | null, current: LoadResult): boolean {
  if (expected === null) return !current.found;
  return current.position === expected;
}
