// What a projection costs, in rows as D1 bills them (bench/cost.ts), in a file
// of its own: `npx vitest run --config vitest.bench.config.ts bench/cost.bench.ts`
// runs only them. Rows do not depend on time: nothing here is delayed or timed.
import { env } from "cloudflare:workers";
import { it } from "vitest";
import { costOfGroup, costOfLease, costOfWrites } from "./cost.js";
import { FULL } from "./suites.js";

const minutes = 60_000;

it("cost of writes", { timeout: 20 * minutes }, async ({ task }) => {
  task.meta.benchTable = await costOfWrites(env.DB, FULL);
});

it("cost of a group", { timeout: 20 * minutes }, async ({ task }) => {
  task.meta.benchTable = await costOfGroup(env.DB, FULL);
});

it("cost of a lease", { timeout: 20 * minutes }, async ({ task }) => {
  task.meta.benchTable = await costOfLease(env.DB, FULL);
});
