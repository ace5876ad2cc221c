// Projection versions on D1 (decision 0020): each call reads the version
// records (one round trip), checks them, then sends its change in one
// `batch()` whose first statement fails unless the records still are what was
// read. A lost response is checked by reading the version's state again.
import type { OperationOptions } from "./checkpoint-store.js";
import type { D1Calls } from "./d1-calls.js";
import type { CheckpointOperation } from "./errors.js";
import {
  dropSteps,
  findVersions,
  isVersionMarker,
  parseRebuild,
  parseSwitch,
  projectionVersion,
  ProjectionVersionError,
  rebuildSteps,
  switchSteps,
  toState,
  VERSIONS_SQL,
  type ProjectionVersion,
  type RebuildOptions,
  type SqlStep,
  type SwitchOptions,
  type VersionRow,
  type VersionState,
} from "./projection-versions.js";
import type { CheckVerdict } from "./retry.js";
import { checkSignal, checkVersion, parseNamed } from "./validate.js";

type Operation = "rebuild" | "switch" | "dropVersion";

/** The version records of `name`, ascending by version: one round trip. */
export async function versions(base: D1Calls, name: string, options: OperationOptions | undefined): Promise<ProjectionVersion[]> {
  const { name: valid, signal } = parseNamed("versions", name, options);
  return read(base.budgeted("versions", valid, options?.budget), "versions", valid, signal);
}

/** The state of one version (`undefined`: no such version): one round trip. */
export async function versionState(base: D1Calls, name: string, version: number, options: OperationOptions | undefined): Promise<VersionState | undefined> {
  const { name: valid, signal } = parseNamed("versions", name, options);
  const at = checkVersion("versions", valid, version);
  const calls = base.budgeted("versions", valid, options?.budget);
  return calls.call({ operation: "versions", checkpoint: valid, signal, kind: "read", send: () => stateOf(calls, valid, at) });
}

/** Records `version` as a rebuild of `name` beside the live version and creates its tables, in one batch. */
export async function startRebuild(
  base: D1Calls,
  name: string,
  version: number,
  options: RebuildOptions<readonly D1PreparedStatement[]>,
): Promise<void> {
  const { name: valid, version: at, signal, tables, liveTables, create: given } = parseRebuild(name, version, options);
  const calls = base.budgeted("rebuild", valid, options.budget);
  const create = given === undefined ? [] : calls.checkStatements("rebuild", valid, given, "options.create");
  findVersions("rebuild", valid, at, await read(calls, "rebuild", valid, signal), tables, liveTables);
  await apply(calls, "rebuild", valid, at, signal, rebuildSteps(valid, at, tables, liveTables), create, "building");
}

/** Switches the rebuild `version` of `name` live in one batch (see `D1CheckpointStore.switchVersion`). */
export async function switchVersion(base: D1Calls, name: string, version: number, options: SwitchOptions | undefined): Promise<void> {
  const { name: valid, signal } = parseNamed("switch", name, options);
  const at = checkVersion("switch", valid, version);
  const retire = parseSwitch(valid, options);
  const calls = base.budgeted("switch", valid, options?.budget);
  const { live, target } = findVersions("switch", valid, at, await read(calls, "switch", valid, signal));
  if (live === undefined || target === undefined) return; // (findVersions threw)
  await apply(calls, "switch", valid, at, signal, switchSteps(valid, live, target, retire), [], "live");
}

/** Drops a version that is not live: its record, checkpoint, parked events, lease and tables, in one batch. */
export async function dropVersion(base: D1Calls, name: string, version: number, options: OperationOptions | undefined): Promise<void> {
  const { name: valid, signal } = parseNamed("dropVersion", name, options);
  const at = checkVersion("dropVersion", valid, version);
  checkSignal("dropVersion", valid, signal);
  const calls = base.budgeted("dropVersion", valid, options?.budget);
  const { target } = findVersions("dropVersion", valid, at, await read(calls, "dropVersion", valid, signal));
  if (target === undefined) return; // (findVersions threw)
  await apply(calls, "dropVersion", valid, at, signal, dropSteps(valid, target), [], undefined);
}

async function stateOf(calls: D1Calls, name: string, version: number): Promise<VersionState | undefined> {
  return toState(await calls.versionState(name, version));
}

async function read(calls: D1Calls, operation: CheckpointOperation, name: string, signal: AbortSignal | undefined): Promise<ProjectionVersion[]> {
  const rows = await calls.call({
    operation,
    checkpoint: name,
    signal,
    kind: "read",
    send: async () => (await calls.all<VersionRow>(calls.db.prepare(VERSIONS_SQL).bind(name))).results,
  });
  return rows.map((row) => projectionVersion(operation, name, row));
}

/**
 * Sends a version change in one batch. A failed guard is a
 * {@link ProjectionVersionError}; a lost response is checked by the version's
 * state: `landed` when it is `after` (`undefined`: the record is gone).
 */
async function apply(
  calls: D1Calls,
  operation: Operation,
  name: string,
  version: number,
  signal: AbortSignal | undefined,
  steps: readonly SqlStep[],
  extra: readonly D1PreparedStatement[],
  after: VersionState | undefined,
): Promise<void> {
  const batch = [...steps.map(({ sql, bindings }) => calls.db.prepare(sql).bind(...bindings)), ...extra];
  const before = operation === "dropVersion" ? "present" : operation === "switch" ? "building" : "not building";
  await calls.call({
    operation,
    checkpoint: name,
    signal,
    kind: "checked",
    send: async () => {
      try {
        await calls.batch(batch);
      } catch (error) {
        if (isVersionMarker(error)) {
          const why =
            operation === "switch"
              ? "the rebuild is behind the live checkpoint (a live run committed past it), or the version records changed meanwhile"
              : "the version records changed meanwhile (another rebuild, switch or drop)";
          throw new ProjectionVersionError(operation, name, version, `${why}; nothing was applied`, { cause: error });
        }
        throw error;
      }
    },
    check: async (): Promise<CheckVerdict<undefined>> => {
      const state = await stateOf(calls, name, version);
      if (state === after) return { landed: true, value: undefined };
      const unchanged = before === "present" ? state !== undefined : before === "building" ? state === "building" : state !== "building";
      return unchanged ? { landed: false } : { landed: "unknown", found: `version ${version} is ${state ?? "gone"} now` };
    },
  });
}
