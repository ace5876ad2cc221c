// The admin page's Rebuild (decision 0020): the version a projection's
// Rebuild starts, checked when the handler is built, and whether it can start
// now, worked out by the store's own plan (planRebuild) from one snapshot of
// every version record and of the schema, so that the page offers it exactly
// when `startRebuild` would not refuse it, and says why otherwise.
import { CheckpointStoreError, CheckpointTypeError } from "../core/errors.js";
import type { D1Client } from "../d1/client.js";
import { checkOptions, checkVersion, typeName } from "../core/validate.js";
import { ALL_VERSIONS_SQL, checkTables, type VersionRow } from "../sql/versions.js";
import { hasRowsSql, planRebuild, SCHEMA_OBJECTS_SQL, snapshotOf, type SchemaObject } from "../sql/version-plans.js";

/**
 * What a projection's Rebuild starts: the arguments of
 * `store.startRebuild(name, version, { tables, create, liveTables })`. The
 * page calls it itself, so that it can tell from the version records whether
 * it can start, and shows Rebuild disabled with the reason when not (the
 * version is live, another one is building, a table is taken or has rows).
 *
 * @example
 * ```ts
 * startRebuild: {
 *   version: 2, // the version your newest code declares: raise it with the next one
 *   tables: { balances: "balances_v2" },
 *   create: [env.DB.prepare("CREATE TABLE IF NOT EXISTS balances_v2 (account TEXT PRIMARY KEY, balance INTEGER NOT NULL)")],
 * }
 * ```
 */
export interface AdminRebuild {
  /** The version to start: the `version` of the runner or group member that builds it. */
  readonly version: number;
  /** Its tables by read name, e.g. `{ balances: "balances_v2" }` (as `startRebuild` takes them). */
  readonly tables: Readonly<Record<string, string>>;
  /** The statements that create its tables, run in the same batch as the records. */
  readonly create?: readonly D1PreparedStatement[] | undefined;
  /** On a projection's first rebuild, the live version's tables when a read name is already a view (as `startRebuild` takes them). */
  readonly liveTables?: Readonly<Record<string, string>> | undefined;
}

const REBUILD_KEYS = ["version", "tables", "create", "liveTables"];

/** Checks a projection's `startRebuild` when the handler is built: typed errors naming the option. */
export function checkRebuild(name: string, value: unknown, argument: string): AdminRebuild | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "function") {
    throw new CheckpointTypeError("configure", name, argument, "must be { version, tables, create?, liveTables? }, not a function: the page starts the rebuild itself, so that it can tell when it can start");
  }
  const given = checkOptions<AdminRebuild>("configure", name, value as AdminRebuild, argument, REBUILD_KEYS);
  const version = checkVersion("configure", name, given.version, `${argument}.version`);
  const tables = checkTables("configure", name, given.tables, `${argument}.tables`, true);
  const liveTables = given.liveTables === undefined ? undefined : checkTables("configure", name, given.liveTables, `${argument}.liveTables`, false);
  if (given.create !== undefined && !Array.isArray(given.create)) {
    throw new CheckpointTypeError("configure", name, `${argument}.create`, `must be an array of D1 statements, got ${typeName(given.create)}`);
  }
  return Object.freeze({ version, tables, create: given.create, liveTables });
}

/** `startRebuild`'s options for a checked rebuild. */
export function rebuildOptions(rebuild: AdminRebuild): { tables: Readonly<Record<string, string>>; create?: readonly D1PreparedStatement[]; liveTables?: Readonly<Record<string, string>> } {
  return {
    tables: rebuild.tables,
    ...(rebuild.create === undefined ? {} : { create: rebuild.create }),
    ...(rebuild.liveTables === undefined ? {} : { liveTables: rebuild.liveTables }),
  };
}

/**
 * Why each projection's Rebuild cannot start now (`undefined`: it can), by
 * the checks `startRebuild` makes: one round trip for every version record
 * and the schema, and one more, only when a new version's tables exist
 * already, to see whether they are empty. A record another tool wrote badly
 * disables its projection's Rebuild with what is wrong; it never fails the page.
 */
export async function rebuildRefusals(db: D1Client, rebuilds: ReadonlyMap<string, AdminRebuild>): Promise<Map<string, string | undefined>> {
  const refusals = new Map<string, string | undefined>();
  if (rebuilds.size === 0) return refusals;
  const [records, objects] = await db.batch<Record<string, unknown>>([db.prepare(ALL_VERSIONS_SQL), db.prepare(SCHEMA_OBJECTS_SQL)]);
  const rows = (records?.results ?? []) as unknown as (VersionRow & { readonly name?: unknown })[];
  const schema = (objects?.results ?? []) as unknown as SchemaObject[];
  const existing = new Map<string, string[]>();
  for (const [name, rebuild] of rebuilds) {
    try {
      const { mustBeEmpty } = planRebuild(name, rebuild.version, rebuild.tables, rebuild.liveTables, snapshotOf("rebuild", name, rows, schema));
      refusals.set(name, undefined);
      if (mustBeEmpty.length > 0) existing.set(name, mustBeEmpty);
    } catch (error) {
      if (!(error instanceof CheckpointStoreError)) throw error;
      refusals.set(name, reasonOf(error, name));
    }
  }
  const checked = [...existing].flatMap(([name, tables]) => tables.map((table) => ({ name, table })));
  if (checked.length === 0) return refusals;
  const used = await db.batch<{ used: unknown }>(checked.map(({ table }) => db.prepare(hasRowsSql(table))));
  for (const [name, tables] of existing) {
    const full = tables.filter((table) => used[checked.findIndex((check) => check.name === name && check.table === table)]?.results[0]?.used === 1);
    if (full.length > 0) refusals.set(name, `a rebuild starts from empty tables, and ${full.join(", ")} has rows`);
  }
  return refusals;
}

/** A store error's reason without its `rebuild("name"): ` prefix, as the page shows it. */
function reasonOf(error: CheckpointStoreError, name: string): string {
  const prefix = `${error.operation}(${JSON.stringify(name)}): `;
  return error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
}
