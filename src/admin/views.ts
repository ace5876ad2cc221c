// What the admin page and its JSON routes read, tolerating rows that other
// tools wrote badly: a corrupt checkpoint, parked event or move time is shown
// as corrupt, never a failed page.
import type { D1CheckpointStore } from "../d1/checkpoint-store.js";
import { CorruptCheckpointError, messageOf } from "../core/errors.js";
import type { ProjectionStatus } from "../sql/status.js";
import { isTime } from "../core/validate.js";

/** A projection's row: its status, or a checkpoint whose stored position is not one. */
export type ProjectionView =
  | (ProjectionStatus & {
      /** Milliseconds since the oldest event it has not applied, when `eventTimeAfter` is given and it lags. */
      readonly lagMs: number | undefined;
    })
  | { readonly name: string; readonly corrupt: string };

/** A parked event's row; `parkedAt` is `undefined` when its stored time is corrupt. */
export interface ParkedView {
  readonly position: number;
  readonly error: string;
  readonly parkedAt: Date | undefined;
}

/** A parked event another tool wrote with a position that is not one: shown, but it cannot be replayed. */
export interface CorruptParkedView {
  readonly corrupt: string;
  readonly error: string;
}

/** One page of a projection's parked events, by position, and the position the next page starts after. */
export interface ParkedPage {
  readonly events: readonly ParkedView[];
  readonly corrupt: readonly CorruptParkedView[];
  readonly next: number | undefined;
}

/** A Durable Object partition's row: its projections' statuses, or why they could not be read. */
export interface PartitionView {
  readonly name: string;
  readonly statuses: readonly ProjectionStatus[];
  readonly error: string | undefined;
}

/** The most lagging projections whose lag as time one page view looks up (one query each, in one batch). */
const MAX_TIME_LOOKUPS = 25;

/** What to read the oldest unapplied event's time with: its first row's first column, ms since the epoch or a date text. */
export type EventTimeAfter = (after: number) => D1PreparedStatement;

/**
 * Every checkpoint's status in name order. A row whose stored position is not
 * one is listed as corrupt and the listing resumes after it.
 */
export async function projectionViews(
  store: D1CheckpointStore,
  newest: number | D1PreparedStatement | undefined,
  eventTimeAfter: EventTimeAfter | undefined,
  limit: number,
): Promise<ProjectionView[]> {
  const rows: (ProjectionStatus | { readonly name: string; readonly corrupt: string })[] = [];
  for (let after: string | undefined, done = false; !done && rows.length < limit; ) {
    try {
      for await (const status of store.statuses({ newest, after, pageSize: Math.min(1000, limit) })) {
        rows.push(status);
        if (rows.length >= limit) break;
      }
      done = true;
    } catch (error) {
      if (!(error instanceof CorruptCheckpointError)) throw error;
      rows.push({ name: error.checkpoint ?? "", corrupt: `stored ${error.column} ${String(error.value)}` });
      after = error.checkpoint;
      if (after === undefined) break;
    }
  }
  // At most MAX_TIME_LOOKUPS lagging projections get lag as time, so that a page view stays well within D1's queries per invocation.
  const lagging = rows.filter((row): row is ProjectionStatus => !("corrupt" in row) && (row.lag ?? 1) > 0).slice(0, MAX_TIME_LOOKUPS);
  const times = eventTimeAfter === undefined || lagging.length === 0 ? [] : await store.db.batch<Record<string, unknown>>(lagging.map((row) => eventTimeAfter(row.position)));
  const now = Date.now();
  const lagMs = new Map<string, number>();
  lagging.forEach((row, index) => {
    const value: unknown = Object.values(times[index]?.results[0] ?? {})[0];
    const at = typeof value === "string" ? Date.parse(value) : value;
    if (isTime(at)) lagMs.set(row.name, Math.max(0, now - at));
  });
  return rows.map((row) => ("corrupt" in row ? row : { ...row, lagMs: lagMs.get(row.name) }));
}

/** Parked rows as stored: ?1 name, ?2 after, ?3 limit (the integer positions, keyset-paged). */
const PARKED_ROWS_SQL =
  "SELECT position, error, parked_at FROM parked_events WHERE name = ?1 AND typeof(position) = 'integer' AND position > ?2 ORDER BY position LIMIT ?3";
/** Parked rows whose position is not an integer (another tool's), at most 20: ?1 name. */
const CORRUPT_PARKED_SQL = "SELECT CAST(position AS TEXT) AS position, error FROM parked_events WHERE name = ?1 AND typeof(position) <> 'integer' LIMIT 20";

/** A page of a projection's parked events after `after`, read as stored (one round trip), corrupt rows shown as such. */
export async function parkedPage(store: D1CheckpointStore, name: string, after: number, limit: number): Promise<ParkedPage> {
  const [page, corrupt] = await store.db.batch<Record<string, unknown>>([
    store.db.prepare(PARKED_ROWS_SQL).bind(name, after, limit + 1),
    store.db.prepare(CORRUPT_PARKED_SQL).bind(name),
  ]);
  const rows: Record<string, unknown>[] = page?.results ?? [];
  const corruptRows: Record<string, unknown>[] = corrupt?.results ?? [];
  const events = rows.slice(0, limit).map((row) => ({
    position: Number(row.position),
    error: typeof row.error === "string" ? row.error : String(row.error),
    parkedAt: isTime(row.parked_at) ? new Date(row.parked_at) : undefined,
  }));
  return {
    events,
    corrupt: (after === 0 ? corruptRows : []).map((row) => ({ corrupt: `stored position ${String(row.position)}`, error: String(row.error) })),
    next: rows.length > limit ? events.at(-1)?.position : undefined,
  };
}

/** The partitions' statuses; a partition that fails is shown with its error. */
export async function partitionViews(
  list: () => Promise<readonly { readonly name: string; readonly statuses: () => Promise<readonly ProjectionStatus[]> }[]>,
): Promise<PartitionView[]> {
  let partitions: Awaited<ReturnType<typeof list>>;
  try {
    partitions = await list();
  } catch (error) {
    return [{ name: "(the partitions hook)", statuses: [], error: messageOf(error) }];
  }
  return Promise.all(
    partitions.map(async ({ name, statuses }) => {
      try {
        // An RPC answer nothing has checked: names made text, so that the page can escape them.
        const listed: readonly { readonly name: unknown }[] = await statuses();
        return { name, statuses: listed.map((status) => ({ ...status, name: typeof status.name === "string" ? status.name : String(status.name) })) as ProjectionStatus[], error: undefined };
      } catch (error) {
        return { name, statuses: [], error: messageOf(error) };
      }
    }),
  );
}
