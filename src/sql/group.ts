// Several checkpoints at once, for projection groups: the load of many names
// in one statement, and the checks of a group commit's arguments. Shared by
// the D1 and the Durable Object store.
import type { CheckpointCommit, LoadResult, ParkRequest, VersionFence } from "../core/store.js";
import { CheckpointRangeError, CheckpointTypeError, type CheckpointOperation } from "../core/errors.js";
import { checkParkRequests } from "./parked-events.js";
import { checkFence, conditionHolds } from "../core/arguments.js";
import { checkName, checkOptions, checkPosition, keysOf, toPosition } from "../core/validate.js";

/** The most checkpoints one group load or commit takes. */
export const MAX_GROUP_SIZE = 100;

/** The checkpoints of many names: ?1 a JSON array of the names. */
export const LOAD_MANY_SQL = "SELECT name, position FROM checkpoints WHERE name IN (SELECT value FROM json_each(?1))";

/** The keys of a group commit's part. */
const COMMIT_PART_KEYS = keysOf<CheckpointCommit<unknown>>()(["name", "position", "writes", "expected", "parked", "fence"]);

/** A row of {@link LOAD_MANY_SQL}. */
export interface NamedPositionRow {
  readonly name: unknown;
  readonly position: unknown;
}

/** Checks a list of names: 1 to {@link MAX_GROUP_SIZE} distinct checkpoint names. */
export function checkNames(operation: CheckpointOperation, value: unknown, argument = "names"): string[] {
  if (!Array.isArray(value)) throw new CheckpointTypeError(operation, undefined, argument, "must be an array of checkpoint names");
  if (value.length === 0 || value.length > MAX_GROUP_SIZE) {
    throw new CheckpointRangeError(operation, undefined, argument, `must hold 1 to ${MAX_GROUP_SIZE} names, got ${value.length}`);
  }
  const names: string[] = [];
  for (let index = 0; index < value.length; index++) {
    const name = checkName(operation, value[index] as unknown, `${argument}[${index}]`);
    if (names.includes(name)) throw new CheckpointRangeError(operation, name, `${argument}[${index}]`, "names the same checkpoint twice");
    names.push(name);
  }
  return names;
}

/** The rows of {@link LOAD_MANY_SQL} as load results in the order of `names`; a corrupt position is a `CorruptCheckpointError`. */
export function loadManyResults(operation: CheckpointOperation, names: readonly string[], rows: readonly NamedPositionRow[]): LoadResult[] {
  const found = new Map<string, unknown>();
  for (const row of rows) if (typeof row.name === "string") found.set(row.name, row.position);
  return names.map((name) => (found.has(name) ? { position: toPosition(operation, name, found.get(name)), found: true } : { position: 0, found: false }));
}

/** A group commit's part, checked. */
export interface CheckedCommit<Writes> {
  readonly name: string;
  readonly position: number;
  readonly expected: number | null | undefined;
  readonly writes: Writes;
  readonly parked: readonly ParkRequest[];
  readonly fence: VersionFence | undefined;
}

/** Checks a group commit: 1 to {@link MAX_GROUP_SIZE} parts of distinct names, each as `commit` checks its arguments. */
export function checkCommits<Writes>(
  operation: CheckpointOperation,
  value: unknown,
  checkWrites: (name: string, writes: unknown, argument: string) => Writes,
): CheckedCommit<Writes>[] {
  if (!Array.isArray(value)) throw new CheckpointTypeError(operation, undefined, "commits", "must be an array of { name, position, writes }");
  if (value.length === 0 || value.length > MAX_GROUP_SIZE) {
    throw new CheckpointRangeError(operation, undefined, "commits", `must hold 1 to ${MAX_GROUP_SIZE} parts, got ${value.length}`);
  }
  const names = new Set<string>();
  return (value as unknown[]).map((part, index) => {
    if (typeof part !== "object" || part === null) throw new CheckpointTypeError(operation, undefined, `commits[${index}]`, "must be an object { name, position, writes }");
    // A misspelt key (`expectd`) would make the part unconditional: refused, as in every options object.
    const given = checkOptions<Partial<CheckpointCommit<unknown>>>(operation, undefined, part, `commits[${index}]`, COMMIT_PART_KEYS);
    const name = checkName(operation, given.name, `commits[${index}].name`);
    if (names.has(name)) throw new CheckpointRangeError(operation, name, `commits[${index}].name`, "names the same checkpoint as an earlier part");
    names.add(name);
    const position = checkPosition(operation, name, given.position, `commits[${index}].position`);
    const expected = given.expected === undefined || given.expected === null ? given.expected : checkPosition(operation, name, given.expected, `commits[${index}].expected`);
    return {
      name,
      position,
      expected,
      writes: checkWrites(name, given.writes, `commits[${index}].writes`),
      parked: checkParkRequests(operation, name, given.parked, position),
      fence: checkFence(operation, name, given.fence),
    };
  });
}

/** After a lost group commit: every checkpoint at its target (landed), every one still at `expected` (send again), or neither. */
export function groupVerdict(commits: readonly CheckedCommit<unknown>[], current: readonly LoadResult[]): "landed" | "not landed" | "unknown" {
  const at = current.map((checkpoint) => (checkpoint.found ? checkpoint.position : null));
  if (commits.every((commit, index) => at[index] === commit.position)) return "landed";
  const held = (commit: CheckedCommit<unknown>, loaded: LoadResult | undefined): boolean => commit.expected !== undefined && loaded !== undefined && conditionHolds(commit.expected, loaded);
  if (commits.every((commit, index) => held(commit, current[index]))) return "not landed";
  return "unknown";
}
