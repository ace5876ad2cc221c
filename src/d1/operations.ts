// Operating projections on D1: their parked events (listed, replayed) and
// their status (position, lag, when they last moved). The SQL lives beside
// the Durable Object store's in parked-events.ts and projection-status.ts.
import type { ReplayOptions } from "../core/store.js";
import { FENCE_GUARD_SQL } from "../sql/checkpoints.js";
import type { D1Calls } from "./calls.js";
import type { CheckpointOperation } from "../core/errors.js";
import { keysetPages, parseListOptions } from "../core/keyset.js";
import {
  IS_PARKED_SQL,
  isNotParked,
  PARKED_PAGE_SQL,
  parkedPages,
  parseParkedList,
  REPLAY_GUARD_SQL,
  UNPARK_SQL,
  type ParkedEvent,
  type ParkedListOptions,
  type ParkedRow,
} from "../sql/parked-events.js";
import {
  newestOf,
  projectionStatus,
  parseEventTimes,
  statusColumns,
  statusSql,
  type ProjectionStatus,
  type StatusListOptions,
  type StatusOptions,
  type StatusRow,
} from "../sql/status.js";
import { fencedOut, isVersionMarker } from "../sql/versions.js";
import { checkPosition } from "../core/validate.js";
import { parseNamed, parseSave, REPLAY_KEYS } from "../core/arguments.js";
import { STATUS_KEYS, STATUS_LIST_KEYS } from "../sql/status.js";

/** What may stand for the newest position on D1: a number, or a query whose first row's first column is it. */
export type D1Newest = number | D1PreparedStatement;

/** The parked events of `name`, ascending by position, one retried round trip per page. */
export function parked(base: D1Calls, name: string, options: ParkedListOptions | undefined): AsyncIterableIterator<ParkedEvent> {
  const listing = parseParkedList(name, options);
  const calls = base.budgeted("parked", listing.name, options?.budget);
  return parkedPages(listing, (after, limit) =>
    calls.call({
      operation: "parked",
      checkpoint: listing.name,
      signal: listing.signal,
      kind: "read",
      send: async () => (await calls.all<ParkedRow>(calls.db.prepare(PARKED_PAGE_SQL).bind(listing.name, after, limit))).results,
    }),
  );
}

/**
 * Applies `statements` for a parked event and removes it, in one batch whose
 * first statement fails when the event is not parked: of racing replays one
 * applies. A lost response is checked: still parked → sent again; gone → unknown.
 */
export async function replayParked(
  base: D1Calls,
  name: string,
  position: number,
  statements: readonly D1PreparedStatement[],
  options: ReplayOptions | undefined,
): Promise<boolean> {
  const { name: valid, position: at, signal, fence } = parseSave("replay", name, position, options, REPLAY_KEYS);
  const calls = base.budgeted("replay", valid, options?.budget);
  const { db } = calls;
  const writes = calls.checkStatements("replay", valid, statements);
  const batch = [
    ...(fence === undefined ? [] : [db.prepare(FENCE_GUARD_SQL).bind(fence.name, fence.version, fence.state)]),
    db.prepare(REPLAY_GUARD_SQL).bind(valid, at),
    db.prepare(UNPARK_SQL).bind(valid, at),
    ...writes,
  ];
  return calls.call({
    operation: "replay",
    checkpoint: valid,
    signal,
    kind: "checked",
    send: async () => {
      try {
        await calls.batch(batch);
        return true;
      } catch (error) {
        if (isNotParked(error)) return false;
        if (fence !== undefined && isVersionMarker(error)) throw fencedOut("replay", valid, fence, await calls.versionState(fence.name, fence.version), error);
        throw error;
      }
    },
    check: async () =>
      (await calls.first(db.prepare(IS_PARKED_SQL).bind(valid, at))) === null
        ? { landed: "unknown", found: `the event at position ${at} is no longer parked` }
        : { landed: false },
  });
}

/** The status of `name` in one round trip (with a `newest` query, in the same batch). */
export async function status(base: D1Calls, name: string, options: StatusOptions<D1Newest> | undefined): Promise<ProjectionStatus> {
  const { name: valid, signal } = parseNamed("status", name, options, STATUS_KEYS);
  const calls = base.budgeted("status", valid, options?.budget);
  const newest = parseNewest(calls, valid, options?.newest);
  const statement = calls.db.prepare(statusSql(parseEventTimes(valid, options?.eventTimes))).bind(valid);
  const { row, last } = await calls.call({
    operation: "status",
    checkpoint: valid,
    signal,
    kind: "read",
    send: async () => {
      if (typeof newest !== "object") return { row: (await calls.first<StatusRow>(statement)) ?? {}, last: undefined };
      const [found, newestRows] = await calls.batch<Record<string, unknown>>([statement, newest]);
      return { row: found?.results[0] ?? {}, last: newestRows?.results[0] };
    },
  });
  // The newest query's result is checked as statuses() checks it: junk is an input error naming `newest`, not a D1 failure.
  return projectionStatus("status", valid, row, typeof newest === "object" ? newestOf("status", valid, last) : newest);
}

/** The status of every checkpoint in name order, keyset-paged; a `newest` query is one round trip before the first page. */
export function statuses(base: D1Calls, options: StatusListOptions<D1Newest> | undefined): AsyncIterableIterator<ProjectionStatus> {
  const listing = parseListOptions("status", options, STATUS_LIST_KEYS);
  const calls = base.budgeted("status", undefined, options?.budget);
  let newest = parseNewest(calls, undefined, options?.newest);
  const pages = calls.pages<ProjectionStatus>("status", statusColumns(parseEventTimes(undefined, options?.eventTimes)), listing, (row, name) =>
    projectionStatus("status", name, row, typeof newest === "object" ? undefined : newest),
  );
  return keysetPages(listing, async (request) => {
    if (typeof newest === "object") {
      const query = newest;
      const [last] = await calls.call({
        operation: "status",
        checkpoint: undefined,
        signal: listing.signal,
        kind: "read",
        send: async () => (await calls.all(query)).results,
      });
      newest = newestOf("status", undefined, last);
    }
    return pages(request);
  });
}

function parseNewest(calls: D1Calls, name: string | undefined, value: unknown): D1Newest | undefined {
  const operation: CheckpointOperation = "status";
  if (value === undefined) return undefined;
  if (typeof value === "number" || typeof value === "bigint") return checkPosition(operation, name, value, "options.newest");
  return calls.checkQuery(operation, name ?? "", value, "options.newest");
}
