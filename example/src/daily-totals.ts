// The "daily-totals" projection, written with Drizzle ORM: per account and
// UTC day, the sum of the amounts and the number of events. Its table is a
// Drizzle table (migrations/0006_daily_totals.sql creates the same); its
// writes are Drizzle queries that `drizzleStatements` turns into D1
// statements of the binding, so they commit in the checkpoint's batch like
// any other writes. It runs with the balances projection as one group (see
// `ledgerProjections` in ledger.ts): one read and one commit for both.
// In your project, import from "@synapse-es/checkpointstore-d1/drizzle".
import { and, asc, eq, gt, sql, type SQL } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { integer, primaryKey, sqliteTable, text, type SQLiteColumn } from "drizzle-orm/sqlite-core";
import { drizzleStatements } from "../../src/drizzle.js";
import { D1CheckpointStore, jsonRowChunks } from "../../src/index.js";
import type { LedgerEvent } from "./ledger.js";

/** The projection's checkpoint name. */
export const DAILY_TOTALS = "daily-totals";

/** The read model: one row per account and UTC day (`YYYY-MM-DD`) that has events. */
export const dailyTotals = sqliteTable(
  "daily_totals",
  {
    account: text("account").notNull(),
    day: text("day").notNull(),
    total: integer("total").notNull(),
    events: integer("events").notNull(),
    lastPosition: integer("last_position").notNull(),
  },
  (table) => [primaryKey({ columns: [table.account, table.day] })],
);

/** An event with the time the log recorded it (`events.recorded_at`), as the ledger's projection group reads it. */
export interface RecordedEvent extends LedgerEvent {
  /** ISO 8601 in UTC, `2026-05-01T12:34:56.789Z` (the column's default). */
  readonly recordedAt: string;
}

/** One day of an account, as `GET /daily-totals/:account` answers it. */
export interface DailyTotal {
  readonly day: string;
  readonly total: number;
  readonly events: number;
}

const ISO_DAY = /^(\d{4}-\d{2}-\d{2})[T ]/;

/** The UTC day of a recorded_at value; throws for a value that is not an ISO time (the projection stops there, the group's others go on). */
export function utcDay(recordedAt: string, position: number): string {
  const day = ISO_DAY.exec(recordedAt)?.[1];
  if (day === undefined) throw new Error(`event ${position}: recorded_at ${JSON.stringify(recordedAt)} is not an ISO time`);
  return day;
}

/** `excluded.<column>` in an upsert's SET: the value the insert would have written. */
function excluded(column: SQLiteColumn): SQL {
  return sql`excluded.${sql.identifier(column.name)}`;
}

/**
 * The projection: one upsert per batch, whatever its accounts and days. The
 * events travel as one JSON value (`jsonRowChunks`: more only past D1's
 * 2 MB value limit), SQLite groups them per account and day, and Drizzle's
 * insert builder writes the sums into the table's columns, adding them to a
 * row already there. The SELECT gives the columns in the table's order
 * (Drizzle checks that for a select builder, not for `sql`). Pure: it builds
 * the statements and runs none.
 */
export function projectDailyTotals(db: D1Database, events: readonly RecordedEvent[]): D1PreparedStatement[] {
  const orm = drizzle(db); // builds queries only: the statements run in the checkpoint's batch
  const rows = events.map(({ position, account, amount, recordedAt }) => ({ position, account, amount, day: utcDay(recordedAt, position) }));
  return drizzleStatements(
    db,
    jsonRowChunks(rows).map((json) =>
      orm
        .insert(dailyTotals)
        .select(
          sql`SELECT value ->> 'account', value ->> 'day', SUM(value ->> 'amount'), COUNT(*), MAX(value ->> 'position')
            FROM json_each(${json}) WHERE true GROUP BY 1, 2`,
        )
        .onConflictDoUpdate({
          target: [dailyTotals.account, dailyTotals.day],
          set: {
            total: sql`${dailyTotals.total} + ${excluded(dailyTotals.total)}`,
            events: sql`${dailyTotals.events} + ${excluded(dailyTotals.events)}`,
            lastPosition: excluded(dailyTotals.lastPosition),
          },
        }),
    ),
  );
}

/**
 * Clears the read model and its checkpoint in one transaction, so the next
 * group run rebuilds it from the first event (balances, ahead, waits for it).
 * For an admin's Reset: `{ reset: () => resetDailyTotals(db), rebuild: () => catchUp(db) }`.
 */
export async function resetDailyTotals(db: D1Database): Promise<void> {
  await db.batch([db.prepare("DELETE FROM daily_totals"), new D1CheckpointStore(db).resetStatement(DAILY_TOTALS)]);
}

/** An account's days in day order, `limit` after `after` (a `YYYY-MM-DD`, or "" for the first). */
export function listDailyTotals(db: D1Database, account: string, after: string, limit: number): Promise<DailyTotal[]> {
  return drizzle(db)
    .select({ day: dailyTotals.day, total: dailyTotals.total, events: dailyTotals.events })
    .from(dailyTotals)
    .where(and(eq(dailyTotals.account, account), gt(dailyTotals.day, after)))
    .orderBy(asc(dailyTotals.day))
    .limit(limit);
}
