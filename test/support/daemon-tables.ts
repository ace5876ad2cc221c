// The tables the suite's daemon objects (daemon-object.ts) project from and
// into, emptied for each test: the events, the totals (every version of them,
// since a rebuild test leaves dm_totals a view of dm_totals_v2), the flags
// that make a run fail, and the package's checkpoints, leases and versions.
export async function resetDaemonTables(db: D1Database): Promise<void> {
  const { results } = await db.prepare("SELECT type, name FROM sqlite_master WHERE name GLOB 'dm_totals*' AND type IN ('table', 'view') ORDER BY type DESC").all<{ type: string; name: string }>();
  await db.batch([
    ...results.map(({ type, name }) => db.prepare(`DROP ${type === "view" ? "VIEW" : "TABLE"} IF EXISTS ${name}`)),
    db.prepare("CREATE TABLE IF NOT EXISTS dm_events (position INTEGER PRIMARY KEY, account TEXT NOT NULL, amount INTEGER NOT NULL)"),
    db.prepare("CREATE TABLE IF NOT EXISTS dm_totals (account TEXT PRIMARY KEY, total INTEGER NOT NULL, n INTEGER NOT NULL)"),
    db.prepare("CREATE TABLE IF NOT EXISTS dm_flags (what TEXT PRIMARY KEY)"),
    db.prepare("DELETE FROM dm_events"),
    db.prepare("DELETE FROM dm_flags"),
    db.prepare("DELETE FROM checkpoints"),
    db.prepare("DELETE FROM projection_leases"),
    db.prepare("DELETE FROM projection_versions"),
    db.prepare("DELETE FROM projection_runs"),
  ]);
}
