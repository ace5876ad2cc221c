// The in-memory store, for reference, measured in Node (no I/O, so inside
// workerd its clock would not move).
import { it } from "vitest";
import { MemoryCheckpointStore } from "../src/index.js";
import { FULL, inMemoryOperations } from "./suites.js";

it("in-memory store", async ({ task }) => {
  task.meta.benchTable = await inMemoryOperations({ ...FULL, ops: 20_000 }, { MemoryCheckpointStore: new MemoryCheckpointStore() });
});
