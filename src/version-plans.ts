// What startRebuild, switchVersion and dropVersion write (decision 0020), planned
// from one snapshot of the version records and of the database's tables and
// views, and checked against it before anything is sent: the same plans for
// D1 (one batch) and a Durable Object (one transactionSync). Each plan's first
// statement fails unless the records still are what the snapshot showed.
import { NOW_MS_SQL } from "./checkpoint-sql.js";
import { ProjectionVersionError, type ProjectionVersion, type SqlStep, type VersionTables } from "./projection-versions.js";
import { versionCheckpoint } from "./validate.js";

/** Every table and view, with a view's SQL: ?-free. */
export const SCHEMA_OBJECTS_SQL = "SELECT name, type, sql FROM sqlite_master WHERE type IN ('table', 'view')";

/** A row of {@link SCHEMA_OBJECTS_SQL}. */
export interface SchemaObject {
  readonly name: unknown;
  readonly type: unknown;
  readonly sql: unknown;
}

/** What a plan is made from: the projection's version records and the database's tables and views. */
export interface Snapshot {
  readonly versions: readonly ProjectionVersion[];
  readonly objects: readonly SchemaObject[];
}

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

/** The type of a table or view by name: `"table"`, `"view"`, or `undefined` when there is none. */
function typeOf(objects: readonly SchemaObject[], name: string): "table" | "view" | undefined {
  const found = objects.find((object) => typeof object.name === "string" && same(object.name, name));
  return found?.type === "table" || found?.type === "view" ? found.type : undefined;
}

/** The views other than `read` whose SQL names `read`: a rename of `read` would rewrite them to the renamed table. */
function dependentViews(objects: readonly SchemaObject[], read: string): { name: string; sql: string }[] {
  const escaped = read.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const mention = new RegExp(`(^|[^A-Za-z0-9_$])${escaped}($|[^A-Za-z0-9_$])`, "i");
  return objects.flatMap((object) =>
    object.type === "view" && typeof object.name === "string" && typeof object.sql === "string" && !same(object.name, read) && mention.test(object.sql)
      ? [{ name: object.name, sql: object.sql }]
      : [],
  );
}

function fail(operation: "rebuild" | "switch" | "dropVersion", name: string, version: number, message: string): never {
  throw new ProjectionVersionError(operation, name, version, message);
}

/** The read names of `live` that `next` gives no table for: a switch would leave them showing the old version. */
function uncovered(live: VersionTables, next: VersionTables): string[] {
  return Object.keys(live).filter((read) => tableFor(next, read) === undefined);
}

/**
 * Starting a rebuild. Checked: no other version is building and `version` is
 * not live; the new version gives a table for every read name of the live
 * one; a new version's tables are its own (not another version's, not a read
 * name, not a view). Planned: record the live version when the projection has
 * no records yet, record the new one as building (or a retired one as building
 * again), which fails (NOT NULL on `state`) when another version started
 * meanwhile, and its checkpoint at 0, so that the rebuild is listed at once.
 * `mustBeEmpty`: the new tables that exist already; the caller checks they have no row.
 */
export function planRebuild(
  name: string,
  version: number,
  tables: VersionTables,
  liveTables: VersionTables,
  { versions, objects }: Snapshot,
): { steps: SqlStep[]; mustBeEmpty: string[] } {
  const live = versions.find((v) => v.state === "live");
  const target = versions.find((v) => v.version === version);
  const building = versions.find((v) => v.state === "building");
  if (building !== undefined) fail("rebuild", name, version, `version ${building.version} is being rebuilt already: switch to it or drop it first`);
  if (target?.state === "live" || (versions.length === 0 && version === 1)) fail("rebuild", name, version, `version ${version} is the live version`);
  const own = target?.tables ?? tables;
  const missing = uncovered(live?.tables ?? liveTables, own);
  if (missing.length > 0) fail("rebuild", name, version, `the new version must give a table for every read name of the live version; it has none for ${missing.join(", ")}`);
  const mustBeEmpty: string[] = [];
  if (target === undefined) {
    const others = versions.length === 0 ? [liveTables] : versions.map((v) => v.tables);
    const readNames = others.flatMap((t) => Object.keys(t));
    for (const table of Object.values(tables)) {
      if (others.some((t) => Object.values(t).some((taken) => same(taken, table)))) fail("rebuild", name, version, `table ${JSON.stringify(table)} belongs to another version`);
      if (readNames.some((read) => same(read, table))) fail("rebuild", name, version, `table ${JSON.stringify(table)} is a read name`);
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
    { sql: "INSERT INTO checkpoints (name, position) VALUES (?1, 0) ON CONFLICT (name) DO NOTHING", bindings: [versionCheckpoint(name, version)] },
  ];
  return { steps, mustBeEmpty };
}

/**
 * Switching version `version` live. Checked: it is building, a live version
 * is recorded, it gives a table for every live read name, its tables exist,
 * and each read name is what the records say (the live version's own table,
 * a view, or nothing). Planned, in order: the guard (NOT NULL on `state`
 * unless it is still building, the live version still live, and its
 * checkpoint at or beyond the live one); the records; the checkpoints and
 * parked events; then the views. Views that name a read name that is still a
 * table are dropped before it is renamed and made again after, so that they
 * read the view, not the renamed old table.
 */
export function planSwitch(name: string, version: number, retire: "keep" | "drop", { versions, objects }: Snapshot): SqlStep[] {
  const live = versions.find((v) => v.state === "live");
  const next = versions.find((v) => v.version === version);
  if (next?.state !== "building") return fail("switch", name, version, `version ${version} is not being rebuilt (${next === undefined ? "no such version" : `it is ${next.state}`})`);
  if (live === undefined) return fail("switch", name, version, "the projection has no live version record");
  const missing = uncovered(live.tables, next.tables);
  if (missing.length > 0) fail("switch", name, version, `version ${version} gives no table for ${missing.join(", ")} of the live version`);

  const liveCheckpoint = name;
  const nextCheckpoint = versionCheckpoint(name, version);
  const oldCheckpoint = versionCheckpoint(name, live.version);
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
      for (const view of dependentViews(objects, read)) {
        if (remade.has(view.name.toLowerCase())) continue;
        remade.add(view.name.toLowerCase());
        before.push({ sql: `DROP VIEW ${quoted(view.name)}`, bindings: [] });
        after.push({ sql: view.sql, bindings: [] });
      }
      // The read name is still the first version's own table: it moves aside (or goes) for the view.
      const aside = `${read}_v${live.version}`;
      views.push({ sql: retire === "keep" ? `ALTER TABLE ${quoted(read)} RENAME TO ${quoted(aside)}` : `DROP TABLE ${quoted(read)}`, bindings: [] });
      const key = Object.keys(renamed).find((candidate) => same(candidate, read));
      if (key !== undefined) renamed[key] = aside;
    } else {
      if (type === "table") fail("switch", name, version, `the read name ${JSON.stringify(read)} is a table that no version records as its own`);
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
        "ON CONFLICT (name, version) DO UPDATE SET state = CASE WHEN state = 'building' " +
        "AND EXISTS (SELECT 1 FROM projection_versions WHERE name = ?1 AND version = ?3 AND state = 'live') " +
        "AND COALESCE((SELECT position FROM checkpoints WHERE name = ?4), 0) >= COALESCE((SELECT position FROM checkpoints WHERE name = ?5), 0) " +
        "THEN 'live' END",
      bindings: [name, version, live.version, nextCheckpoint, liveCheckpoint],
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
export function planDrop(name: string, version: number, { versions }: Snapshot): SqlStep[] {
  const target = versions.find((v) => v.version === version);
  if (target === undefined) return fail("dropVersion", name, version, `version ${version} has no record`);
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
