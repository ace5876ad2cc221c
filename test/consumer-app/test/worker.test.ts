import { D1CheckpointStore, MemoryCheckpointStore, SCHEMA } from "@synapse-es/checkpointstore-d1";
import { adminHandler, bearerToken } from "@synapse-es/checkpointstore-d1/admin";
import { runCheckpointStoreContract } from "@synapse-es/checkpointstore-d1/contract";
import { countD1 } from "@synapse-es/checkpointstore-d1/testing";
import { env } from "cloudflare:workers";
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

runCheckpointStoreContract(async () => {
  await env.DB.prepare("DELETE FROM checkpoints").run();
  return new D1CheckpointStore(env.DB);
}, "installed D1CheckpointStore");

runCheckpointStoreContract(() => new MemoryCheckpointStore(), "installed MemoryCheckpointStore");
