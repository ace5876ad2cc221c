// Query-builder writes committed with the checkpoint: the ORM suite
// (test/orm-adapter-suite.ts) once per adapter, drizzleStatements and
// kyselyStatements, and what only one of them takes.
import { env } from "cloudflare:workers";
import { CompiledQuery, sql } from "kysely";
import { beforeEach, describe, expect, it } from "vitest";
import { CheckpointTypeError, D1CheckpointStore } from "../src/index.js";
import { kyselyStatements } from "../src/kysely.js";
import { countD1 } from "../src/testing.js";
import { resetOrmTables, runOrmAdapterSuite } from "./orm-adapter-suite.js";
import { drizzleAdapter } from "./orm/drizzle.js";
import { credit, kyselyAdapter, qb } from "./orm/kysely.js";
import { any, caught } from "./support/orm.js";

runOrmAdapterSuite(drizzleAdapter);
runOrmAdapterSuite(kyselyAdapter);

describe("kyselyStatements: compiled queries and sql templates", () => {
  beforeEach(resetOrmTables);

  it("commit takes compiled queries and compiled sql templates unchanged, in one batch with the checkpoint", async () => {
    const counted = countD1(env.DB);
    const store = new D1CheckpointStore(counted.db);
    const update = "UPDATE ledger_balances SET balance = balance + ?, applied = applied + 1 WHERE account = ?";
    const three = kyselyStatements(counted.db, [
      credit({ position: 1, account: "a", amount: 3 }).compile(),
      sql`INSERT INTO ledger_balances (account, balance, applied) VALUES (${"b"}, ${2}, 1)`.compile(qb),
      CompiledQuery.raw(update, [10, "b"]),
    ]);
    await store.commit("ledger", 3, three, { expected: null });
    expect(counted.calls.map((call) => `${call.kind} ${call.sql.length}`)).toEqual(["batch 4"]);
    expect(counted.calls[0]?.sql[3]).toBe(update);
    const { results } = await env.DB.prepare("SELECT account, balance, applied FROM ledger_balances ORDER BY account").all();
    expect(results).toEqual([
      { account: "a", balance: 3, applied: 1 },
      { account: "b", balance: 12, applied: 2 },
    ]);
    await expect(store.load("ledger")).resolves.toEqual({ position: 3, found: true });
  });

  it("an uncompiled sql template is a typed error that says how to compile it, before any D1 call", () => {
    const counted = countD1(env.DB);
    const error = caught(() => kyselyStatements(counted.db, any([credit({ position: 1, account: "a", amount: 1 }), sql`SELECT 1`])));
    expect(error).toBeInstanceOf(CheckpointTypeError);
    expect(error).toMatchObject({ operation: "commit", argument: "queries[1]" });
    expect((error as Error).message).toMatch(/sql`…`\.compile\(db\)/);
    expect(counted.calls).toEqual([]);
  });
});
