// What startRebuild, switchVersion and dropVersion write (decision 0020), planned
// from one snapshot of the version records and of the database's tables and
// views, and checked against it before anything is sent: the same plans for
// D1 (one batch) and a Durable Object (one transactionSync). Each plan's guard
// statements fail unless what the plan depends on still holds: for a switch,
// the rebuild (by its start time) and the live version; for a rebuild, that no
// version is building, the new one is not live, its checkpoint is new and its
// tables are still empty; for a drop, that the version is not live.
import { NOW_MS_SQL } from "./checkpoints.js";
import { type CheckpointOperation, ProjectionVersionError } from "../core/errors.js";
import { projectionVersion, type SqlStep, type VersionRow } from "./versions.js";
import { type ProjectionVersion, type VersionTables } from "../core/store.js";
import { versionCheckpoint } from "../core/validate.js";

/** Every table, view and trigger, with its SQL, in the order they were made. */
export const SCHEMA_OBJECTS_SQL = "SELECT name, type, tbl_name, sql FROM sqlite_master WHERE type IN ('table', 'view', 'trigger') ORDER BY rowid";

/** A row of {@link SCHEMA_OBJECTS_SQL}. */
export interface SchemaObject {
  readonly name: unknown;
  readonly type: unknown;
  readonly tbl_name: unknown;
  readonly sql: unknown;
}

/**
 * What a plan is made from: the projection's version records, every name
 * other projections' records hold (read names and tables, by lower-cased
 * name, with the projection that holds it), and the database's tables, views
 * and triggers.
 */
export interface Snapshot {
  readonly versions: readonly ProjectionVersion[];
  readonly owners: ReadonlyMap<string, string>;
  readonly objects: readonly SchemaObject[];
}

/** A snapshot from every projection's version records (ALL_VERSIONS_SQL) and the schema's objects (SCHEMA_OBJECTS_SQL). */
export function snapshotOf(
  operation: CheckpointOperation,
  name: string,
  rows: readonly (VersionRow & { readonly name?: unknown })[],
  objects: readonly SchemaObject[],
): Snapshot {
  const owners = new Map<string, string>();
  for (const row of rows) {
    if (row.name === name || typeof row.name !== "string" || typeof row.tables !== "string") continue;
    let tables: unknown;
    try {
      tables = JSON.parse(row.tables);
    } catch {
      continue; // a record no plan could use; its own projection's calls report it
    }
    if (typeof tables !== "object" || tables === null) continue;
    for (const [read, table] of Object.entries(tables)) {
      for (const held of [read, table]) if (typeof held === "string") owners.set(held.toLowerCase(), row.name);
    }
  }
  return { versions: rows.filter((row) => row.name === name).map((row) => projectionVersion(operation, name, row)), owners, objects };
}

/** The longest identifier the store accepts (checkTables). */
const MAX_IDENTIFIER = 64;

/** A quoted identifier (identifiers are checked to be plain, the escaping is for safety's sake). */
function quoted(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}

/** The statement that tells whether a table has a row: a rebuild must start from empty tables. */
export function hasRowsSql(table: string): string {
  return `SELECT EXISTS (SELECT 1 FROM ${quoted(table)}) AS used`;
}

const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

/** A version's table for a read name, compared as SQLite compares identifiers (case-insensitively, own keys only). */
function tableFor(tables: VersionTables, read: string): string | undefined {
  const key = Object.keys(tables).find((candidate) => same(candidate, read));
  return key === undefined ? undefined : tables[key];
}

/** Whether `sql` names `name` as a whole identifier (case-insensitively). */
function mentions(sql: string, name: string): boolean {
  return new RegExp(`(^|[^A-Za-z0-9_$])${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}($|[^A-Za-z0-9_$])`, "i").test(sql);
}

/** The type of a table or view by name: `"table"`, `"view"`, or `undefined` when there is none. */
function typeOf(objects: readonly SchemaObject[], name: string): "table" | "view" | undefined {
  const found = objects.find((object) => (object.type === "table" || object.type === "view") && typeof object.name === "string" && same(object.name, name));
  return found?.type === "table" || found?.type === "view" ? found.type : undefined;
}

/**
 * What a rename of `read` would rewrite to the renamed table: the views that
 * name it, the views that name those, and so on (never a view in `keep`, the
 * read names the plan makes itself), with the triggers on them (dropped with
 * their view). In the order they were made, so that they can be made again in it.
 */
function dependents(objects: readonly SchemaObject[], read: string, keep: (name: string) => boolean): { name: string; type: string; sql: string }[] {
  const views = objects.flatMap((object) =>
    object.type === "view" && typeof object.name === "string" && typeof object.sql === "string" && !same(object.name, read) && !keep(object.name)
      ? [{ name: object.name, type: "view", sql: object.sql }]
      : [],
  );
  const reached = new Set<string>();
  for (let grew = true, names = [read]; grew; ) {
    grew = false;
    for (const view of views) {
      if (reached.has(view.name.toLowerCase()) || !names.some((name) => mentions(view.sql, name))) continue;
      reached.add(view.name.toLowerCase());
      names = [...names, view.name];
      grew = true;
    }
  }
  return objects.flatMap((object) => {
    if (typeof object.name !== "string" || typeof object.sql !== "string") return [];
    const on = typeof object.tbl_name === "string" ? object.tbl_name.toLowerCase() : "";
    if (object.type === "view" && reached.has(object.name.toLowerCase())) return [{ name: object.name, type: "view", sql: object.sql }];
    if (object.type === "trigger" && reached.has(on)) return [{ name: object.name, type: "trigger", sql: object.sql }];
    return [];
  });
}

function fail(operation: "rebuild" | "switch" | "dropVersion", name: string, version: number, message: string): never {
  throw new ProjectionVersionError(operation, name, version, message);
}

/**
 * Refuses any name of `tables` (read names and tables) that another
 * projection's records hold: a plan never renames, re-points or drops it.
 */
function checkOwn(operation: "rebuild" | "switch" | "dropVersion", name: string, version: number, owners: ReadonlyMap<string, string>, ...tables: readonly VersionTables[]): void {
  for (const held of tables.flatMap((t) => Object.entries(t).flat())) {
    const owner = owners.get(held.toLowerCase());
    if (owner !== undefined) fail(operation, name, version, `${JSON.stringify(held)} belongs to projection ${JSON.stringify(owner)} (its version records name it)`);
  }
}

/** Whether view `read` reads `table`: its SQL names it. */
function viewReads(objects: readonly SchemaObject[], read: string, table: string): boolean {
  const view = objects.find((object) => object.type === "view" && typeof object.name === "string" && same(object.name, read));
  return typeof view?.sql === "string" && mentions(view.sql, table);
}

/** The read names of `live` that `next` gives no table for: a switch would leave them showing the old version. */
function uncovered(live: VersionTables, next: VersionTables): string[] {
  return Object.keys(live).filter((read) => tableFor(next, read) === undefined);
}

/** The name a read name's first table is renamed to at a switch from `version`; `undefined` when it would be too long. */
function asideName(read: string, version: number): string | undefined {
  const aside = `${read}_v${version}`;
  return aside.length > MAX_IDENTIFIER ? undefined : aside;
}

/**
 * Starting a rebuild. Checked against the snapshot:
 * - no other version is building, and `version` is not live;
 * - the new version gives a table for every read name of the live one;
 * - a read name the live version does not have is neither a table nor a view
 *   yet (the switch will make it a view);
 * - the live version's tables exist (on a first rebuild, `liveTables`
 *   defaults to the read names that are tables now), and a read name that is
 *   its own table can be set aside as `<name>_v<live>` at the switch;
 * - the new tables are its own: not a table of any projection's version
 *   records, not a read name, not a view, not a set-aside name.
 *
 * Planned: record the live version when the projection has no records yet,
 * record the new one as building (or a retired one as building again), which
 * fails (NOT NULL on `state`) when another version started meanwhile, and
 * save its checkpoint at 0, so that the rebuild is listed at once.
 * `mustBeEmpty`: the new tables that exist already; the caller checks they have no row.
 */
export function planRebuild(
  name: string,
  version: number,
  tables: VersionTables,
  givenLiveTables: VersionTables | undefined,
  { versions, owners, objects }: Snapshot,
): { steps: SqlStep[]; mustBeEmpty: string[] } {
  const live = versions.find((v) => v.state === "live");
  const target = versions.find((v) => v.version === version);
  const building = versions.find((v) => v.state === "building");
  if (building !== undefined) fail("rebuild", name, version, `version ${building.version} is being rebuilt already: switch to it or drop it first`);
  if (target?.state === "live" || (versions.length === 0 && version === 1)) fail("rebuild", name, version, `version ${version} is the live version`);
  const liveVersion = live?.version ?? 1;
  const liveTables: VersionTables =
    live?.tables ?? givenLiveTables ?? Object.fromEntries(Object.keys(tables).filter((read) => typeOf(objects, read) === "table").map((read) => [read, read]));
  const own = target?.tables ?? tables;
  // Nothing another projection's records hold: not as a read name, not as a live table, not as a new table.
  checkOwn("rebuild", name, version, owners, liveTables, own, tables);
  const missing = uncovered(liveTables, own);
  if (missing.length > 0) {
    const which = target === undefined ? "the new version" : `retired version ${version}`;
    fail("rebuild", name, version, `${which} must give a table for every read name of the live version, and has none for ${missing.join(", ")}`);
  }
  if (Object.keys(liveTables).length === 0) fail("rebuild", name, version, `none of the read names (${Object.keys(tables).join(", ")}) is a table now: give liveTables`);
  for (const [read, table] of Object.entries(liveTables)) {
    if (typeOf(objects, table) !== "table") fail("rebuild", name, version, `the live version's table ${JSON.stringify(table)} (for ${read}) does not exist: give liveTables`);
    // What the switch will find: the read name is the live table itself, or a view of it, or nothing yet.
    if (!same(read, table) && typeOf(objects, read) === "table") fail("rebuild", name, version, `the read name ${JSON.stringify(read)} is a table, but the live version's table for it is ${JSON.stringify(table)}`);
    // A live table is what readers read now through its read name: the table itself, or the table its view reads.
    if (live === undefined && !same(read, table) && !viewReads(objects, read, table)) {
      fail("rebuild", name, version, `readers read ${JSON.stringify(read)} now, and it is not a view of ${JSON.stringify(table)}: a live table is the read name itself, or the table its view reads`);
    }
    if (same(read, table) && asideName(read, liveVersion) === undefined) fail("rebuild", name, version, `the read name ${JSON.stringify(read)} is too long to be set aside as ${read}_v${liveVersion} at the switch`);
  }
  for (const read of Object.keys(own)) {
    if (tableFor(liveTables, read) === undefined && typeOf(objects, read) !== undefined) {
      fail("rebuild", name, version, `the read name ${JSON.stringify(read)} is a ${typeOf(objects, read) ?? ""} that no version records: the switch would replace it`);
    }
  }
  const mustBeEmpty: string[] = [];
  if (target === undefined) {
    const taken = (versions.length === 0 ? [liveTables] : versions.map((v) => v.tables)).flatMap((t) => Object.values(t));
    const reserved = Object.entries(liveTables).flatMap(([read, table]) => (same(read, table) ? [asideName(read, liveVersion) ?? ""] : []));
    for (const [read, table] of Object.entries(tables)) {
      if (taken.some((other) => same(other, table))) fail("rebuild", name, version, `table ${JSON.stringify(table)} belongs to another version`);
      if (tableFor(liveTables, table) !== undefined || tableFor(tables, table) !== undefined) fail("rebuild", name, version, `table ${JSON.stringify(table)} is a read name`);
      if (reserved.some((aside) => same(aside, table))) fail("rebuild", name, version, `table ${JSON.stringify(table)} is the name the switch sets ${read}'s first table aside as`);
      const type = typeOf(objects, table);
      if (type === "view") fail("rebuild", name, version, `${JSON.stringify(table)} is a view, not a table`);
      if (type === "table") mustBeEmpty.push(table);
    }
  }
  const noneBuilding = "NOT EXISTS (SELECT 1 FROM projection_versions WHERE name = ?1 AND state = 'building')";
  const steps: SqlStep[] = [
    {
      sql: `INSERT INTO projection_versions (name, version, state, tables, started_at) SELECT ?1, 1, 'live', ?2, ${NOW_MS_SQL} WHERE NOT EXISTS (SELECT 1 FROM projection_versions WHERE name = ?1)`,
      bindings: [name, JSON.stringify(liveTables)],
    },
    {
      sql:
        "INSERT INTO projection_versions (name, version, state, tables, started_at, started_position) " +
        `VALUES (?1, ?2, CASE WHEN ${noneBuilding} THEN 'building' END, ?3, ${NOW_MS_SQL}, COALESCE((SELECT position FROM checkpoints WHERE name = ?4), 0)) ` +
        `ON CONFLICT (name, version) DO UPDATE SET state = CASE WHEN state = 'retired' AND ${noneBuilding} THEN 'building' END, ` +
        "started_at = excluded.started_at, started_position = excluded.started_position",
      bindings: [name, version, JSON.stringify(tables), versionCheckpoint(name, version)],
    },
    // A new version's checkpoint must not be there already (another tool's): NOT NULL on `state` then.
    ...(target === undefined
      ? [
          {
            sql: "INSERT INTO projection_versions (name, version, state, tables, started_at) SELECT ?1, ?2, NULL, '{}', 0 WHERE EXISTS (SELECT 1 FROM checkpoints WHERE name = ?3)",
            bindings: [name, version, versionCheckpoint(name, version)],
          },
        ]
      : []),
    { sql: "INSERT INTO checkpoints (name, position) VALUES (?1, 0) ON CONFLICT (name) DO NOTHING", bindings: [versionCheckpoint(name, version)] },
    // The tables found empty are still empty when the batch runs (NOT NULL on `state` otherwise): nothing fills them between.
    ...mustBeEmpty.map((table) => ({
      sql: `INSERT INTO projection_versions (name, version, state, tables, started_at) SELECT ?1, ?2, NULL, '{}', 0 WHERE EXISTS (SELECT 1 FROM ${quoted(table)})`,
      bindings: [name, version],
    })),
  ];
  return { steps, mustBeEmpty };
}

/**
 * Switching version `version` live. Checked: it is building, a live version
 * is recorded, it gives a table for every live read name, its tables exist,
 * each read name is what the records say (the live version's own table, a
 * view a version records, or nothing), and a first table's set-aside name is
 * free. Planned, in order: the guard (NOT NULL on `state` unless it is still
 * building, the live version still live, and its checkpoint at or beyond the
 * live one); the records; the checkpoints and parked events; then the views.
 * Views that read a read name that is still a table (and the views that read
 * those, with their triggers) are dropped before it is renamed and made again
 * after, so that they read the new view, not the renamed old table.
 */
export function planSwitch(name: string, version: number, retire: "keep" | "drop", { versions, owners, objects }: Snapshot): SqlStep[] {
  const live = versions.find((v) => v.state === "live");
  const next = versions.find((v) => v.version === version);
  if (next?.state !== "building") return fail("switch", name, version, `version ${version} is not being rebuilt (${next === undefined ? "no such version" : `it is ${next.state}`})`);
  if (live === undefined) return fail("switch", name, version, "the projection has no live version record");
  checkOwn("switch", name, version, owners, live.tables, next.tables);
  const missing = uncovered(live.tables, next.tables);
  if (missing.length > 0) fail("switch", name, version, `version ${version} gives no table for ${missing.join(", ")} of the live version`);

  const liveCheckpoint = name;
  const nextCheckpoint = versionCheckpoint(name, version);
  const oldCheckpoint = versionCheckpoint(name, live.version);
  const recordedReads = versions.flatMap((v) => Object.keys(v.tables));
  const isReadName = (object: string): boolean => tableFor(next.tables, object) !== undefined;
  const renamed: Record<string, string> = { ...live.tables };
  const before: SqlStep[] = [];
  const views: SqlStep[] = [];
  const after: SqlStep[] = [];
  const remade = new Set<string>();
  for (const [read, table] of Object.entries(next.tables)) {
    if (typeOf(objects, table) !== "table") fail("switch", name, version, `table ${JSON.stringify(table)} of version ${version} does not exist`);
    const old = tableFor(live.tables, read);
    const type = typeOf(objects, read);
    if (old !== undefined && same(old, read)) {
      if (type !== "table") fail("switch", name, version, `the records say ${JSON.stringify(read)} is version ${live.version}'s table, but it is ${type === undefined ? "missing" : "a view"}`);
      const aside = asideName(read, live.version);
      if (aside === undefined || (retire === "keep" && typeOf(objects, aside) !== undefined)) {
        fail("switch", name, version, `the first table ${JSON.stringify(read)} cannot be set aside as ${read}_v${live.version}: the name is taken or too long (switch with retire: "drop", or free the name)`);
      }
      for (const object of dependents(objects, read, isReadName)) {
        if (remade.has(`${object.type}:${object.name.toLowerCase()}`)) continue;
        remade.add(`${object.type}:${object.name.toLowerCase()}`);
        if (object.type === "view") before.push({ sql: `DROP VIEW ${quoted(object.name)}`, bindings: [] }); // its triggers go with it
        after.push({ sql: object.sql, bindings: [] });
      }
      // The read name is still the first version's own table: it moves aside (or goes) for the view.
      views.push({ sql: retire === "keep" ? `ALTER TABLE ${quoted(read)} RENAME TO ${quoted(aside)}` : `DROP TABLE ${quoted(read)}`, bindings: [] });
      const key = Object.keys(renamed).find((candidate) => same(candidate, read));
      if (key !== undefined) renamed[key] = aside;
    } else {
      if (type === "table") fail("switch", name, version, `the read name ${JSON.stringify(read)} is a table that no version records as its own`);
      if (type === "view" && !recordedReads.some((recorded) => same(recorded, read))) fail("switch", name, version, `the read name ${JSON.stringify(read)} is a view that no version records: the switch would replace it`);
      if (type === "view") views.push({ sql: `DROP VIEW ${quoted(read)}`, bindings: [] });
      if (retire === "drop" && old !== undefined) views.push({ sql: `DROP TABLE IF EXISTS ${quoted(old)}`, bindings: [] });
    }
    views.push({ sql: `CREATE VIEW ${quoted(read)} AS SELECT * FROM ${quoted(table)}`, bindings: [] });
  }

  const steps: SqlStep[] = [
    {
      sql:
        "INSERT INTO projection_versions (name, version, state, tables, started_at) " +
        "VALUES (?1, ?2, (SELECT state FROM projection_versions WHERE name = ?1 AND version = ?2), '{}', 0) " +
        // started_at pins the rebuild the plan was made from: one dropped and started again meanwhile is another.
        "ON CONFLICT (name, version) DO UPDATE SET state = CASE WHEN state = 'building' AND started_at = ?6 " +
        "AND EXISTS (SELECT 1 FROM projection_versions WHERE name = ?1 AND version = ?3 AND state = 'live') " +
        "AND COALESCE((SELECT position FROM checkpoints WHERE name = ?4), 0) >= COALESCE((SELECT position FROM checkpoints WHERE name = ?5), 0) " +
        "THEN 'live' END",
      bindings: [name, version, live.version, nextCheckpoint, liveCheckpoint, next.startedAt.getTime()],
    },
  ];
  if (retire === "drop") {
    steps.push(
      { sql: "DELETE FROM projection_versions WHERE name = ?1 AND version = ?2", bindings: [name, live.version] },
      { sql: "DELETE FROM parked_events WHERE name = ?1", bindings: [liveCheckpoint] },
    );
  } else {
    steps.push(
      { sql: "UPDATE projection_versions SET state = 'retired', tables = ?3 WHERE name = ?1 AND version = ?2", bindings: [name, live.version, JSON.stringify(renamed)] },
      // The old version keeps its parked events and its position under its own checkpoint.
      { sql: "DELETE FROM checkpoints WHERE name = ?1", bindings: [oldCheckpoint] },
      { sql: "INSERT INTO checkpoints (name, position) SELECT ?2, position FROM checkpoints WHERE name = ?1", bindings: [liveCheckpoint, oldCheckpoint] },
      { sql: "UPDATE parked_events SET name = ?2 WHERE name = ?1", bindings: [liveCheckpoint, oldCheckpoint] },
    );
  }
  steps.push(
    // The live checkpoint moves to the rebuild's position (or goes, when the rebuild has none), with its parked events.
    { sql: "DELETE FROM checkpoints WHERE name = ?1 AND NOT EXISTS (SELECT 1 FROM checkpoints WHERE name = ?2)", bindings: [liveCheckpoint, nextCheckpoint] },
    {
      sql: "INSERT INTO checkpoints (name, position) SELECT ?1, position FROM checkpoints WHERE name = ?2 ON CONFLICT (name) DO UPDATE SET position = excluded.position",
      bindings: [liveCheckpoint, nextCheckpoint],
    },
    { sql: "UPDATE parked_events SET name = ?1 WHERE name = ?2", bindings: [liveCheckpoint, nextCheckpoint] },
    { sql: "DELETE FROM checkpoints WHERE name = ?1", bindings: [nextCheckpoint] },
    ...before,
    ...views,
    ...after,
  );
  return steps;
}

/**
 * Dropping a version that is not live: the guard (NOT NULL on `state` unless
 * it exists and is not live), its record, checkpoint, parked events, lease
 * and tables. A version's tables are never a view's (every switch re-points
 * every live read name), so dropping them leaves no view dangling.
 */
export function planDrop(name: string, version: number, { versions, owners }: Snapshot): SqlStep[] {
  const target = versions.find((v) => v.version === version);
  if (target === undefined) return fail("dropVersion", name, version, `version ${version} has no record`);
  checkOwn("dropVersion", name, version, owners, target.tables);
  if (target.state === "live") fail("dropVersion", name, version, `version ${version} is the live version: switch to another first`);
  const checkpoint = versionCheckpoint(name, version);
  return [
    {
      sql:
        "INSERT INTO projection_versions (name, version, state, tables, started_at) " +
        "VALUES (?1, ?2, (SELECT state FROM projection_versions WHERE name = ?1 AND version = ?2), '{}', 0) " +
        "ON CONFLICT (name, version) DO UPDATE SET state = CASE WHEN state <> 'live' THEN state END",
      bindings: [name, version],
    },
    { sql: "DELETE FROM projection_versions WHERE name = ?1 AND version = ?2", bindings: [name, version] },
    { sql: "DELETE FROM checkpoints WHERE name = ?1", bindings: [checkpoint] },
    { sql: "DELETE FROM parked_events WHERE name = ?1", bindings: [checkpoint] },
    { sql: "DELETE FROM projection_leases WHERE name = ?1", bindings: [checkpoint] },
    ...Object.values(target.tables).map((table) => ({ sql: `DROP TABLE IF EXISTS ${quoted(table)}`, bindings: [] })),
  ];
}
