// `npm run bench`: every suite at full size, inside workerd against local D1.
// The Node-side reporter (bench/markdown-reporter.ts) writes docs/benchmarks.md.
import { env } from "cloudflare:workers";
import { describe, it } from "vitest";
import { projectionWithLatency } from "./latency.js";
import { ormAdapters } from "./orm.js";
import { overlappingRunners } from "./overlap.js";
import { commitVersusSeparate, FULL, listing, operations, roundTrips, runnerThroughput } from "./suites.js";
import { oneInvocation, projectionGroupWrites, setBasedWrites } from "./throughput.js";
import { versionFences } from "./versions.js";
import { D1CheckpointStore } from "../src/index.js";

const minutes = 60_000;

describe("checkpointstore-d1 benchmarks", () => {
  it("save, load, reset", { timeout: 20 * minutes }, async ({ task }) => {
    task.meta.benchTable = await operations(env.DB, FULL, { D1CheckpointStore: new D1CheckpointStore(env.DB) });
  });

  it("round trips", async ({ task }) => {
    task.meta.benchTable = await roundTrips(env.DB);
  });

  it("commit", { timeout: 20 * minutes }, async ({ task }) => {
    task.meta.benchTable = await commitVersusSeparate(env.DB, FULL);
  });

  it("runner", { timeout: 20 * minutes }, async ({ task }) => {
    task.meta.benchTable = await runnerThroughput(env.DB, FULL);
  });

  it("latency", { timeout: 20 * minutes }, async ({ task }) => {
    task.meta.benchTable = await projectionWithLatency(env.DB, FULL);
  });

  it("set-based writes", { timeout: 20 * minutes }, async ({ task }) => {
    task.meta.benchTable = await setBasedWrites(env.DB, FULL);
  });

  it("one invocation", { timeout: 20 * minutes }, async ({ task }) => {
    task.meta.benchTable = await oneInvocation(env.DB, FULL);
  });

  it("projection group", { timeout: 20 * minutes }, async ({ task }) => {
    task.meta.benchTable = await projectionGroupWrites(env.DB, FULL);
  });

  it("orm adapters", { timeout: 20 * minutes }, async ({ task }) => {
    task.meta.benchTable = await ormAdapters(env.DB, FULL);
  });

  it("version fences", { timeout: 20 * minutes }, async ({ task }) => {
    task.meta.benchTable = await versionFences(env.DB, FULL);
  });

  it("overlap", { timeout: 20 * minutes }, async ({ task }) => {
    task.meta.benchTable = await overlappingRunners(env.DB, FULL);
  });

  it("listing", { timeout: 60 * minutes }, async ({ task }) => {
    task.meta.benchTable = await listing(env.DB, FULL);
  });
});
