// The Durable Object store's benchmark, in a file of its own: each bench file
// runs in a fresh isolate, as a Durable Object's code does in production,
// untouched by the D1 suites' calls (which make shared code polymorphic).
import { env } from "cloudflare:workers";
import { it } from "vitest";
import { durableObjectOperations } from "./durable-object.js";
import { FULL } from "./suites.js";

it("durable object", { timeout: 20 * 60_000 }, async ({ task }) => {
  task.meta.benchTable = await durableObjectOperations(env.CHECKPOINT_OBJECTS, env.DB, FULL);
});
