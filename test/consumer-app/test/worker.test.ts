import { D1CheckpointStore, MemoryCheckpointStore, SCHEMA } from "@synapse-es/checkpointstore-d1";
import { adminHandler, bearerToken } from "@synapse-es/checkpointstore-d1/admin";
import { runCheckpointStoreContract } from "@synapse-es/checkpointstore-d1/contract";
import { drizzleStatements } from "@synapse-es/checkpointstore-d1/drizzle";
import { kyselyStatements } from "@synapse-es/checkpointstore-d1/kysely";
import { countD1 } from "@synapse-es/checkpointstore-d1/testing";
import { env } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { DummyDriver, Kysely, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler } from "kysely";
import { expect, it } from "vitest";
import worker from "../src/worker.js";

it("the installed package saves and loads through the user's Worker", async () => {
  const post = new Request("http://app.test/orders", { method: "POST", body: "42" });
  const response = await worker.fetch(post as Parameters<typeof worker.fetch>[0], env);
  expect(await response.json()).toEqual({ position: 42, found: true });
  const counted = countD1(env.DB);
  await expect(new D1CheckpointStore(counted.db).load("orders")).resolves.toEqual({ position: 42, found: true });
  expect(counted.calls).toHaveLength(1);
  expect(SCHEMA).toContain("CREATE TABLE IF NOT EXISTS checkpoints");
});

it("the installed admin subpath mounts and lists the projections", async () => {
  const admin = adminHandler({ store: new D1CheckpointStore(env.DB), auth: bearerToken("0123456789abcdef0123456789abcdef") });
  await expect(admin(new Request("http://app.test/orders"))).resolves.toBeUndefined();
  const response = await admin(new Request("http://app.test/admin/api/projections", { headers: { authorization: "Bearer 0123456789abcdef0123456789abcdef" } }));
  expect(response?.status).toBe(200);
  expect(await response?.json()).toHaveProperty("projections");
});

it("the installed drizzle and kysely subpaths commit read-model writes with the checkpoint", async () => {
  await env.DB.prepare("CREATE TABLE IF NOT EXISTS totals (k TEXT PRIMARY KEY, n INTEGER NOT NULL)").run();
  const totals = sqliteTable("totals", { k: text("k").primaryKey(), n: integer("n").notNull() });
  const qb = new Kysely<{ totals: { k: string; n: number } }>({
    dialect: {
      createAdapter: () => new SqliteAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => new SqliteIntrospector(db),
      createQueryCompiler: () => new SqliteQueryCompiler(),
    },
  });
  const store = new D1CheckpointStore(env.DB);
  const orm = drizzle(env.DB);
  const viaDrizzle = drizzleStatements(env.DB, [orm.insert(totals).values({ k: "drizzle", n: 1 }), sql`UPDATE totals SET n = n + ${1} WHERE k = 'drizzle'`]);
  await store.commit("orm", 1, viaDrizzle, { expected: null });
  await store.commit("orm", 2, kyselyStatements(env.DB, qb.insertInto("totals").values({ k: "kysely", n: 3 })), { expected: 1 });
  const { results } = await env.DB.prepare("SELECT k, n FROM totals ORDER BY k").all();
  expect(results).toEqual([
    { k: "drizzle", n: 2 },
    { k: "kysely", n: 3 },
  ]);
  await expect(store.load("orm")).resolves.toEqual({ position: 2, found: true });
  expect(() => kyselyStatements(env.DB, qb.updateTable("totals").set({ n: Number.NaN }))).toThrow(/queries\.parameters\[0\]/);
});

runCheckpointStoreContract(async () => {
  await env.DB.prepare("DELETE FROM checkpoints").run();
  return new D1CheckpointStore(env.DB);
}, "installed D1CheckpointStore");

runCheckpointStoreContract(() => new MemoryCheckpointStore(), "installed MemoryCheckpointStore");
