// Parked events: events a projection could not apply, set aside by
// `onError: "park"` in the same transaction that moves the checkpoint past
// them, listed per projection, and replayed later. The SQL and the checks
// here are shared by the D1 and the Durable Object store.
import type { OperationOptions, ParkRequest } from "../core/store.js";
import { NOW_MS_SQL } from "./checkpoints.js";
import { CheckpointRangeError, CheckpointTypeError, CorruptCheckpointError, type CheckpointOperation } from "../core/errors.js";
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from "../core/keyset.js";
import { checkInteger, checkName, checkOptions, checkPosition, checkSignal, isTime } from "../core/validate.js";

/**
 * A parked event, as the stores' `parked()` lists it.
 *
 * @category Operations
 */
export interface ParkedEvent {
  /** The projection (checkpoint) name. */
  readonly name: string;
  /** The event's position in the log. */
  readonly position: number;
  /** The message of the error that parked it. */
  readonly error: string;
  /** When it was parked (the database's clock). */
  readonly parkedAt: Date;
}

/**
 * Options of `parked()`.
 *
 * @category Operations
 */
export interface ParkedListOptions extends OperationOptions {
  /** Start after this position (exclusive). */
  readonly after?: number | undefined;
  /** Rows per query (page), 1 to 10,000; default 1,000. */
  readonly pageSize?: number | undefined;
}

/** The longest error message stored with a parked event; longer ones are cut, ending in "…". */
export const MAX_PARKED_ERROR_LENGTH = 1000;

/** Parks one event: ?1 name, ?2 position, ?3 error. Parking it again replaces the error and the time. */
export const PARK_SQL =
  `INSERT INTO parked_events (name, position, error, parked_at) VALUES (?1, ?2, ?3, ${NOW_MS_SQL}) ` +
  "ON CONFLICT (name, position) DO UPDATE SET error = excluded.error, parked_at = excluded.parked_at";

/**
 * The first statement of a replay: fails (NOT NULL on `error`) when the event
 * is not parked, so that the batch or transaction applies nothing; does
 * nothing otherwise. ?1 name, ?2 position.
 */
export const REPLAY_GUARD_SQL =
  "INSERT INTO parked_events (name, position, error, parked_at) SELECT ?1, ?2, NULL, 0 " +
  "WHERE NOT EXISTS (SELECT 1 FROM parked_events WHERE name = ?1 AND position = ?2)";

/** Removes a parked event: ?1 name, ?2 position. */
export const UNPARK_SQL = "DELETE FROM parked_events WHERE name = ?1 AND position = ?2";

/** Whether a parked event exists: ?1 name, ?2 position. */
export const IS_PARKED_SQL = "SELECT 1 AS parked FROM parked_events WHERE name = ?1 AND position = ?2";

/** A page of parked events: ?1 name, ?2 after, ?3 limit. */
export const PARKED_PAGE_SQL =
  "SELECT position, error, parked_at FROM parked_events WHERE name = ?1 AND position > ?2 ORDER BY position LIMIT ?3";

const NOT_PARKED_MARKER = "NOT NULL constraint failed: parked_events.error";

/** Whether an error is the replay guard's failure: the event was not parked. */
export function isNotParked(error: unknown): boolean {
  return error instanceof Error && error.message.includes(NOT_PARKED_MARKER);
}

/** A parked-events row as the page query returns it. */
export interface ParkedRow {
  readonly position: unknown;
  readonly error: unknown;
  readonly parked_at: unknown;
}

/** A row as a {@link ParkedEvent}; a row another tool wrote badly is a `CorruptCheckpointError`. */
export function parkedEvent(operation: CheckpointOperation, name: string, row: ParkedRow): ParkedEvent {
  const { position, error, parked_at: at } = row;
  if (typeof position !== "number" || !Number.isSafeInteger(position) || position < 0) throw new CorruptCheckpointError(operation, name, position);
  if (!isTime(at)) throw new CorruptCheckpointError(operation, name, at, "parked_at");
  return { name, position, error: typeof error === "string" ? error : String(error), parkedAt: new Date(at) };
}

/** The error message as stored: at most {@link MAX_PARKED_ERROR_LENGTH} characters, never a lone surrogate. */
export function parkedMessage(message: string): string {
  const text = message.toWellFormed();
  if (text.length <= MAX_PARKED_ERROR_LENGTH) return text;
  return `${text.slice(0, MAX_PARKED_ERROR_LENGTH - 1).toWellFormed()}…`;
}

/** The checked arguments of `parked()`. */
export interface ParkedListing {
  readonly name: string;
  readonly after: number;
  readonly pageSize: number;
  readonly signal: AbortSignal | undefined;
}

/** Checks the arguments of `parked(name, options)`. */
export function parseParkedList(name: unknown, options: ParkedListOptions | undefined): ParkedListing {
  const valid = checkName("parked", name);
  const { after, pageSize, signal } = checkOptions("parked", valid, options, "options", ["signal", "budget", "after", "pageSize"]);
  return {
    name: valid,
    after: after === undefined ? 0 : checkPosition("parked", valid, after, "options.after"),
    pageSize: checkInteger("parked", valid, pageSize, "options.pageSize", { min: 1, max: MAX_PAGE_SIZE, fallback: DEFAULT_PAGE_SIZE }),
    signal: checkSignal("parked", valid, signal),
  };
}

/** Lists parked events page by page, each page after the last position of the one before. */
export async function* parkedPages(
  listing: ParkedListing,
  fetchPage: (after: number, limit: number) => Promise<readonly ParkedRow[]>,
): AsyncGenerator<ParkedEvent, void, undefined> {
  let after = listing.after;
  for (;;) {
    listing.signal?.throwIfAborted();
    const rows = await fetchPage(after, listing.pageSize);
    for (const row of rows) {
      const event = parkedEvent("parked", listing.name, row);
      yield event;
      after = event.position;
    }
    if (rows.length < listing.pageSize) return;
  }
}

/** Checks `options.parked` of a commit: a dense array of `{ position, error }`, positions at most the committed one. */
export function checkParkRequests(operation: CheckpointOperation, name: string, value: unknown, position: number): ParkRequest[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new CheckpointTypeError(operation, name, "options.parked", "must be an array of { position, error }");
  const items = value as unknown[];
  const requests: ParkRequest[] = [];
  for (let index = 0; index < items.length; index++) {
    const argument = `options.parked[${index}]`;
    const item = index in items ? items[index] : undefined;
    if (typeof item !== "object" || item === null) throw new CheckpointTypeError(operation, name, argument, "must be an object { position, error }");
    const { position: at, error } = item as { position?: unknown; error?: unknown };
    const parked = checkPosition(operation, name, at, `${argument}.position`);
    if (parked > position) throw new CheckpointRangeError(operation, name, `${argument}.position`, `must not be beyond the committed position ${position}, got ${parked}`);
    if (typeof error !== "string") throw new CheckpointTypeError(operation, name, `${argument}.error`, "must be a string");
    requests.push({ position: parked, error: parkedMessage(error) });
  }
  return requests;
}
