// What the Drizzle and Kysely adapter suites share: checks of the ledger read
// model, and a wrapper that counts what is prepared (the admin suites use it too).
import { env } from "cloudflare:workers";
import type { D1Client } from "../../src/index.js";

/** Rows of the read model that differ from the events up to `position`, summed per account (0 when exact). */
export async function wrongRows(position: number): Promise<number> {
  const events = "SELECT account, SUM(amount) AS balance, COUNT(*) AS applied FROM ledger_events WHERE position <= ?1 GROUP BY account";
  const model = "SELECT account, balance, applied FROM ledger_balances";
  const row = await env.DB.prepare(
    `SELECT (SELECT COUNT(*) FROM (${events} EXCEPT ${model})) + (SELECT COUNT(*) FROM (${model} EXCEPT ${events})) AS wrong`,
  )
    .bind(position)
    .first<{ wrong: number }>();
  return row?.wrong ?? -1;
}

/** Wraps `db` so that every `prepare` is recorded: nothing built means none. */
export function countPrepares<DB extends D1Client>(db: DB): { db: DB; prepared: string[] } {
  const prepared: string[] = [];
  const wrapped = new Proxy(db, {
    get(target, key) {
      if (key === "prepare") {
        return (text: string) => {
          prepared.push(text);
          return target.prepare(text);
        };
      }
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { db: wrapped, prepared };
}

/** A value the type checker would reject, as a plain JavaScript caller passes it. */
export function any(value: unknown): never {
  return value as never;
}

/** What `call` throws (undefined if it returns). */
export function caught(call: () => unknown): unknown {
  try {
    call();
  } catch (error) {
    return error;
  }
  return undefined;
}

