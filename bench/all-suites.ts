// Every workerd suite in the order docs/benchmarks.md shows them: for the
// smoke run in npm test. (bench/suites.ts stays importable from Node, where the
// in-memory store is measured; the Durable Object suite needs cloudflare:test.)
import { costOfGroup, costOfLease, costOfWrites } from "./cost.js";
import { daemonCatchUp, daemonFreshness, daemonRebuild, type DaemonScale } from "./daemon.js";
import type { BenchDaemon } from "./daemon-object.js";
import { durableObjectOperations } from "./durable-object.js";
import type { BenchTable } from "./harness.js";
import { projectionWithLatency } from "./latency.js";
import { ormAdapters } from "./orm.js";
import { overlappingRunners } from "./overlap.js";
import { commitVersusSeparate, listing, operations, roundTrips, runnerThroughput, type BenchScale } from "./suites.js";
import { oneInvocation, projectionGroupWrites, setBasedWrites } from "./throughput.js";
import { versionFences } from "./versions.js";
import { D1CheckpointStore } from "../src/index.js";

/** Every suite, in the order docs/benchmarks.md shows them. */
export async function allSuites<T extends Rpc.DurableObjectBranded | undefined>(
  db: D1Database,
  scale: BenchScale,
  objects: DurableObjectNamespace<T>,
  daemons: DurableObjectNamespace<BenchDaemon>,
  daemonScale: DaemonScale,
): Promise<BenchTable[]> {
  return [
    await operations(db, scale, { D1CheckpointStore: new D1CheckpointStore(db) }),
    await roundTrips(db),
    await commitVersusSeparate(db, scale),
    await runnerThroughput(db, scale),
    await projectionWithLatency(db, scale),
    await setBasedWrites(db, scale),
    await oneInvocation(db, scale),
    await projectionGroupWrites(db, scale),
    await costOfWrites(db, scale),
    await costOfGroup(db, scale),
    await costOfLease(db, scale),
    await ormAdapters(db, scale),
    await versionFences(db, scale),
    await overlappingRunners(db, scale),
    await daemonFreshness(db, daemons, daemonScale),
    await daemonCatchUp(db, daemons, daemonScale),
    await daemonRebuild(db, daemons, daemonScale),
    await durableObjectOperations(objects, db, scale),
    await listing(db, scale),
  ];
}
