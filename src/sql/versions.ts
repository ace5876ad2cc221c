// Versions of a projection (decision 0020): a new version is rebuilt beside
// the live one, into its own tables and under its own checkpoint
// ("name@version"), and one transaction switches it live. Readers read a view
// per read name; the switch points the views at the new version's tables and
// moves the live checkpoint to the rebuild's position. Every commit of a
// versioned runner carries a fence, so that a version that is no longer what
// its runner thinks (switched away, dropped) never writes again.
// The SQL, the input checks and the switch's statements, shared by the D1 and
// the Durable Object store.
import type { ProjectionVersion, RebuildOptions, SwitchOptions, VersionFence, VersionState, VersionTables } from "../core/store.js";
import { type CheckpointOperation, CheckpointRangeError, CheckpointTypeError, messageOf, ProjectionVersionError } from "../core/errors.js";
import { checkIdentifier, checkOptions, keysOf, checkVersion, isTime, typeName, versionCheckpoint } from "../core/validate.js";
import { parseNamed } from "../core/arguments.js";
import { SCHEMA } from "./schema.js";

/** Every projection's version records, for a plan's snapshot (a handful of rows). */
export const ALL_VERSIONS_SQL = "SELECT name, version, state, tables, started_at FROM projection_versions ORDER BY name, version";

/** A projection's version records: ?1 name. */
export const VERSIONS_SQL = "SELECT version, state, tables, started_at FROM projection_versions WHERE name = ?1 ORDER BY version";

/** A version record, as {@link VERSIONS_SQL} reads it. */
export interface VersionRow {
  readonly version: unknown;
  readonly state: unknown;
  readonly tables: unknown;
  readonly started_at: unknown;
}

/** A SQL statement and its bindings, for either store. */
export interface SqlStep {
  readonly sql: string;
  readonly bindings: readonly (string | number)[];
}

/** The keys of {@link RebuildOptions}. */
const REBUILD_KEYS = keysOf<RebuildOptions<unknown>>()(["signal", "budget", "tables", "create", "liveTables"]);
/** The keys of {@link SwitchOptions}. */
export const SWITCH_KEYS = keysOf<SwitchOptions>()(["signal", "budget", "retire"]);

/** The package's tables (every table `SCHEMA` makes) and wrangler's migration table: never a projection's. */
const RESERVED_TABLES = new Set([...[...SCHEMA.matchAll(/CREATE TABLE IF NOT EXISTS (\w+)/g)].map((match) => (match[1] ?? "").toLowerCase()), "d1_migrations"]);

/** Whether `identifier` is a table no projection may own: SQLite's (`sqlite_…`), D1's (`_cf_…`), wrangler's or the package's. */
export function isReserved(identifier: string): boolean {
  const lower = identifier.toLowerCase();
  return lower.startsWith("sqlite_") || lower.startsWith("_cf_") || RESERVED_TABLES.has(lower);
}
const MAX_TABLES = 20;

/** Checks a table map: 1 to 20 read names, each an identifier mapped to a distinct identifier; none a store table. */
export function checkTables(operation: CheckpointOperation, name: string, value: unknown, argument: string, own: boolean): VersionTables {
  if (typeof value !== "object" || value === null || Array.isArray(value) || Object.getPrototypeOf(value) !== Object.prototype) {
    throw new CheckpointTypeError(operation, name, argument, `must be a plain object mapping read names to tables, got ${typeName(value)}`);
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0 || entries.length > MAX_TABLES) {
    throw new CheckpointRangeError(operation, name, argument, `must name 1 to ${MAX_TABLES} tables, got ${entries.length}`);
  }
  const seen = new Set<string>();
  for (const [read, table] of entries) {
    for (const identifier of [read, table]) {
      checkIdentifier(operation, name, identifier, `${argument}.${read}`);
      if (isReserved(identifier as string)) {
        throw new CheckpointRangeError(
          operation,
          name,
          `${argument}.${read}`,
          `may name neither sqlite_…, _cf_…, d1_migrations nor one of the package's tables, got ${JSON.stringify(identifier)}`,
        );
      }
    }
    const key = (table as string).toLowerCase();
    if (own && (key === read.toLowerCase() || entries.some(([other]) => other.toLowerCase() === key))) {
      throw new CheckpointRangeError(operation, name, `${argument}.${read}`, `a version's table may not be a read name (readers see the read name as a view of it), got ${JSON.stringify(table)}`);
    }
    if (seen.has(key)) throw new CheckpointRangeError(operation, name, `${argument}.${read}`, `names table ${JSON.stringify(table)} twice`);
    seen.add(key);
  }
  return Object.fromEntries(entries) as VersionTables;
}

/** `startRebuild`'s arguments, checked; `create` is left to the store to check. */
export function parseRebuild(
  name: unknown,
  version: unknown,
  options: RebuildOptions<unknown> | undefined,
): { name: string; version: number; signal: AbortSignal | undefined; tables: VersionTables; liveTables: VersionTables | undefined; create: unknown } {
  const { name: valid, signal } = parseNamed("rebuild", name, options, REBUILD_KEYS);
  const at = checkVersion("rebuild", valid, version);
  const given = checkOptions("rebuild", valid, options, "options", REBUILD_KEYS);
  const tables = checkTables("rebuild", valid, given.tables, "options.tables", true);
  // Without liveTables, the plan takes the read names that are tables now (version-plans.ts).
  const liveTables = given.liveTables === undefined ? undefined : checkTables("rebuild", valid, given.liveTables, "options.liveTables", false);
  return { name: valid, version: at, signal, tables, liveTables, create: given.create };
}

/** A state read from the records: one of the three, or `undefined` (no such version, or junk). */
export function toState(value: unknown): VersionState | undefined {
  return value === "live" || value === "building" || value === "retired" ? value : undefined;
}

/** Checks `switchVersion`'s options. */
export function parseSwitch(name: string, options: SwitchOptions | undefined): "keep" | "drop" {
  const retire: unknown = checkOptions("switch", name, options, "options", SWITCH_KEYS).retire;
  if (retire === undefined) return "keep";
  if (retire === "keep" || retire === "drop") return retire;
  throw new CheckpointRangeError("switch", name, "options.retire", `must be "keep" or "drop", got ${JSON.stringify(retire)}`);
}

/** A version record as a {@link ProjectionVersion}; a record another tool wrote badly is a `ProjectionVersionError`. */
export function projectionVersion(operation: CheckpointOperation, name: string, row: VersionRow): ProjectionVersion {
  const { version, state, tables, started_at: startedAt } = row;
  let parsed: unknown;
  try {
    parsed = typeof tables === "string" ? JSON.parse(tables) : undefined;
  } catch {
    parsed = undefined;
  }
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 1 || (state !== "live" && state !== "building" && state !== "retired") || !isTime(startedAt) || typeof parsed !== "object" || parsed === null) {
    throw new ProjectionVersionError(operation, name, typeof version === "number" ? version : 0, `the version record ${JSON.stringify(row)} is corrupt`);
  }
  let checked: VersionTables;
  try {
    // Stored table names go into SQL again: they are checked as when they were given.
    checked = checkTables(operation, name, parsed, "tables", false);
  } catch (error) {
    throw new ProjectionVersionError(operation, name, version, `the version record ${JSON.stringify(row)} is corrupt: ${messageOf(error)}`);
  }
  return {
    name,
    version,
    state,
    checkpoint: state === "live" ? name : versionCheckpoint(name, version),
    tables: checked,
    startedAt: new Date(startedAt),
  };
}

/** The error for a fenced save whose version is no longer in the fence's state (`state` is what it is now). */
export function fencedOut(operation: CheckpointOperation, checkpoint: string, fence: VersionFence, state: unknown, cause: unknown): ProjectionVersionError {
  const now = typeof state === "string" ? `is ${state} now` : "has no record now (dropped)";
  return new ProjectionVersionError(operation, checkpoint, fence.version, `version ${fence.version} of ${JSON.stringify(fence.name)} was ${fence.state} and ${now}; nothing was applied`, { cause });
}

const VERSION_MARKER = "NOT NULL constraint failed: projection_versions.state";

/**
 * What a failed version change (a rebuild, switch or drop batch) is reported
 * as: the guard's failure, or a schema SQLite cannot read (a rename checks
 * every view and trigger), is a {@link ProjectionVersionError}; anything else
 * is returned as it is. Nothing was applied either way.
 */
export function versionChangeError(operation: "rebuild" | "switch" | "dropVersion", name: string, version: number, error: unknown): unknown {
  if (isVersionMarker(error)) {
    const why =
      operation === "switch"
        ? "the rebuild is behind the live checkpoint (a live run committed past it), or the version records changed meanwhile"
        : operation === "rebuild"
          ? "the version records changed meanwhile (another rebuild, switch or drop), a table of the new version has rows, or its checkpoint exists already"
          : "the version records changed meanwhile (another rebuild, switch or drop)";
    return new ProjectionVersionError(operation, name, version, `${why}; nothing was applied`, { cause: error });
  }
  if (error instanceof Error && /error in (view|trigger) /.test(error.message)) {
    return new ProjectionVersionError(operation, name, version, `the database has a view or trigger SQLite cannot read (${error.message}): fix or drop it, then try again; nothing was applied`, { cause: error });
  }
  return error;
}

/** Whether a D1 or SQLite error is a version guard's failure. */
export function isVersionMarker(error: unknown): boolean {
  return error instanceof Error && error.message.includes(VERSION_MARKER);
}
