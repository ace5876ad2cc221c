import { DurableObject } from "cloudflare:workers";

// The test Worker's entry: the suites run against its DB binding, and against
// the SQLite storage of CheckpointObject instances (through runInDurableObject).
export default {
  fetch(): Response {
    return new Response("checkpointstore-d1 test worker");
  },
} satisfies ExportedHandler;

/** A SQLite-backed Durable Object whose storage the Durable Object store's suites use. */
export class CheckpointObject extends DurableObject {}

export { TestDaemon } from "./support/daemon-object.js";
export { BenchDaemon } from "../bench/daemon-object.js";
