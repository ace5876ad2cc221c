// A run's lease from start to end, for ProjectionRunner and ProjectionGroup:
// the store as one that lets go of leases, the early drop when a run ends
// before its last commit, and the start of a run that lets go at once of a
// lease it may have claimed when that first round trip failed.
import { CheckpointTypeError } from "../core/errors.js";
import type { QueryBudget } from "../core/query-budget.js";
import { type RunLease } from "../core/store.js";
import { hasMethods } from "../core/validate.js";
import { type RunCalls, endsOnBudget } from "./run-options.js";

/** A store that can let go of a run lease (`D1CheckpointStore.releaseLease`). */
export interface LeaseReleasing {
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the row type, as with D1's all<T>()
  releaseLease<Row>(
    name: string,
    lease: RunLease,
    query: D1PreparedStatement | undefined,
    options?: { readonly signal?: AbortSignal | undefined; readonly budget?: QueryBudget | undefined; readonly drop?: boolean | undefined },
  ): Promise<{ readonly held: boolean; readonly rows: Row[] }>;
}

/** The store as one that lets go of leases (the constructor checked it when a lease is set). */
export function leasing(store: object, name: string): LeaseReleasing {
  if (!hasMethods(store, ["releaseLease"])) throw new CheckpointTypeError("run", name, "options.store", "must offer releaseLease to use a lease");
  return store as LeaseReleasing;
}

/** Lets go of a lease at once, whatever was noted; best effort (it expires anyway), within the query kept back for it. */
export async function dropLease(store: object, name: string, lease: RunLease, calls: RunCalls): Promise<void> {
  await leasing(store, name)
    .releaseLease(name, lease, undefined, { drop: true, budget: calls.release })
    .catch(() => undefined);
}

/**
 * Starts a run: `undefined` when its first round trip did not fit in the
 * query budget (the run then ends on its budget, nothing of that round trip
 * sent). On any failure a lease that may have been claimed is let go at once,
 * rather than blocking other runs until it expires.
 */
export async function startRun<T>(start: () => Promise<T>, calls: RunCalls, spentBefore: number, drop: (() => Promise<void>) | undefined): Promise<T | undefined> {
  try {
    return await start();
  } catch (error) {
    if (drop !== undefined && calls.release.spent > spentBefore) await drop();
    calls.done();
    if (endsOnBudget(error)) return undefined;
    throw error;
  }
}
