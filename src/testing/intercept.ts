// The interception under the fault injector (`./testing`): every D1 call that
// makes a round trip, passed through a function that may count, delay or
// fail it, on a wrapper that keeps the binding's own behaviour.
import type { D1Client } from "../d1/client.js";

/** The D1 calls that make a round trip. */
export type D1CallKind = "run" | "all" | "first" | "raw" | "batch" | "exec";

/** One round trip to D1, as an interceptor sees it. */
export interface D1Call {
  /** Which method made it. */
  readonly kind: D1CallKind;
  /** The SQL of each statement it sends (one, or the batch's). */
  readonly sql: readonly string[];
}

/**
 * Sees every round trip: calls `send()` to perform it (or not, or twice), and
 * returns or throws what the caller should see.
 */
export type D1Interceptor = (call: D1Call, send: () => Promise<unknown>) => Promise<unknown>;

const statementSql = new WeakMap<D1PreparedStatement, string>();
const realStatement = new WeakMap<D1PreparedStatement, D1PreparedStatement>();

const STATEMENT_CALLS: ReadonlySet<string> = new Set(["run", "all", "first", "raw"]);

function wrapStatement(real: D1PreparedStatement, sql: string, interceptor: D1Interceptor): D1PreparedStatement {
  const proxy = new Proxy(real, {
    get(target, key) {
      if (key === "bind") {
        return (...values: unknown[]) => wrapStatement(target.bind(...values), sql, interceptor);
      }
      const value: unknown = Reflect.get(target, key, target);
      if (typeof key === "string" && STATEMENT_CALLS.has(key) && typeof value === "function") {
        return (...args: unknown[]) =>
          interceptor({ kind: key as D1CallKind, sql: [sql] }, () =>
            (value as (...a: unknown[]) => Promise<unknown>).apply(target, args),
          );
      }
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  statementSql.set(proxy, sql);
  realStatement.set(proxy, real);
  return proxy;
}

/**
 * Wraps a real D1 binding or session so that `interceptor` sees every round
 * trip (`run`, `all`, `first`, `raw`, `batch`, `exec`) and decides its
 * outcome. The statements still run on the real database: this is a thin
 * wrapper for counting calls and injecting faults in tests, not a fake D1.
 * Sessions opened through the wrapper are wrapped too.
 */
export function interceptD1<DB extends D1Client>(db: DB, interceptor: D1Interceptor): DB {
  return new Proxy(db, {
    get(target, key) {
      if (key === "prepare") {
        return (sql: string) => wrapStatement(target.prepare(sql), sql, interceptor);
      }
      if (key === "batch") {
        return (statements: D1PreparedStatement[]) =>
          interceptor({ kind: "batch", sql: statements.map((s) => statementSql.get(s) ?? "") }, () =>
            target.batch(statements.map((s) => realStatement.get(s) ?? s)),
          );
      }
      if (key === "exec" && "exec" in target) {
        return (sql: string) => interceptor({ kind: "exec", sql: [sql] }, () => target.exec(sql));
      }
      if (key === "withSession" && "withSession" in target) {
        return (constraint?: Parameters<D1Database["withSession"]>[0]) =>
          interceptD1(target.withSession(constraint), interceptor);
      }
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** A D1 client whose round trips are counted. */
export interface CountedD1<DB extends D1Client> {
  /** Use this in place of the real client. */
  readonly db: DB;
  /** Every round trip so far, in order. */
  readonly calls: readonly D1Call[];
  /** Forgets the calls counted so far. */
  clear(): void;
}

/** Wraps `db` so that every round trip is recorded in `calls`. */
export function countD1<DB extends D1Client>(db: DB): CountedD1<DB> {
  const calls: D1Call[] = [];
  return {
    db: interceptD1(db, (call, send) => {
      calls.push(call);
      return send();
    }),
    calls,
    clear: () => {
      calls.length = 0;
    },
  };
}
