import { env } from "cloudflare:workers";
import { runCheckpointStoreContract } from "../src/contract.js";
import { D1CheckpointStore, MemoryCheckpointStore } from "../src/index.js";
import { objectStore } from "./support/in-object.js";

// The same contract, run against every implementation the package ships.
runCheckpointStoreContract(async () => {
  await env.DB.prepare("DELETE FROM checkpoints").run();
  return new D1CheckpointStore(env.DB);
}, "D1CheckpointStore");

runCheckpointStoreContract(async () => {
  await env.DB.prepare("DELETE FROM checkpoints").run();
  return new D1CheckpointStore(env.DB.withSession("first-primary"));
}, "D1CheckpointStore on a first-primary session");

runCheckpointStoreContract(() => new MemoryCheckpointStore(), "MemoryCheckpointStore");

runCheckpointStoreContract(() => objectStore(), "DurableObjectCheckpointStore");
