// The projection daemon's benchmarks (bench/daemon.ts), in a file of their own:
// `npx vitest run --config vitest.bench.config.ts bench/daemon.bench.ts` runs
// only them. The daemon objects are BenchDaemon (bench/daemon-object.ts),
// bound as BENCH_DAEMON in wrangler.toml.
import { env } from "cloudflare:workers";
import { it } from "vitest";
import { DAEMON_FULL, daemonCatchUp, daemonFreshness, daemonRebuild } from "./daemon.js";

const minutes = 60_000;

it("daemon freshness", { timeout: 20 * minutes }, async ({ task }) => {
  task.meta.benchTable = await daemonFreshness(env.DB, env.BENCH_DAEMON, DAEMON_FULL);
});

it("daemon catch-up", { timeout: 20 * minutes }, async ({ task }) => {
  task.meta.benchTable = await daemonCatchUp(env.DB, env.BENCH_DAEMON, DAEMON_FULL);
});

it("daemon rebuild", { timeout: 20 * minutes }, async ({ task }) => {
  task.meta.benchTable = await daemonRebuild(env.DB, env.BENCH_DAEMON, DAEMON_FULL);
});
