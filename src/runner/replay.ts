// Replaying a parked event (decision 0012): read it again from the event
// source, project it alone, and apply its writes while removing it from the
// parked events, in one transaction, without moving the checkpoint. The
// runner's `replay` picks the version's role, then calls this.
import type { OperationOptions, PipelinedProjectionStore, ProjectionStore, VersionFence } from "../core/store.js";
import { messageOf } from "../core/errors.js";
import { checkBudget, type QueryBudget } from "../core/query-budget.js";
import { checkMethods, checkOptions, checkPosition, checkSignal } from "../core/validate.js";
import { OPERATION_KEYS } from "../core/arguments.js";
import { ProjectionError, type PositionedEvent } from "./project-batch.js";

/** What a replay needs of a runner's configuration. */
export interface ReplaySource<Event extends PositionedEvent, Writes> {
  readonly name: string;
  readonly store: ProjectionStore<Writes>;
  readonly pipelined: PipelinedProjectionStore | undefined;
  readonly project: (events: readonly Event[]) => Writes | Promise<Writes>;
  readonly readEvents: ((after: number, limit: number) => Promise<readonly Event[]>) | undefined;
  readonly eventsQuery: ((after: number, limit: number) => D1PreparedStatement) | undefined;
}

/** Replays the parked event at `position` of `source`'s projection, under `fence` when the runner has a version's role. */
export async function replayParked<Event extends PositionedEvent, Writes>(
  source: ReplaySource<Event, Writes>,
  fence: VersionFence | undefined,
  position: number,
  options: OperationOptions | undefined,
): Promise<boolean> {
  const { name, store } = source;
  const at = checkPosition("replay", name, position);
  checkMethods("replay", name, store, "options.store", ["replayParked"], "a store that can replay parked events (replayParked)");
  const given = checkOptions("replay", name, options, "options", OPERATION_KEYS);
  const signal = checkSignal("replay", name, given.signal);
  const budget = checkBudget("replay", name, given.budget);
  signal?.throwIfAborted();
  const found = await readOne(source, at, signal, budget);
  const event = Array.isArray(found) ? (found[0] as Event | undefined) : undefined;
  if (event?.position !== at) {
    throw new ProjectionError(name, at, `the event source has no event at position ${at} (it returned ${String(event?.position ?? "nothing")})`);
  }
  let writes: Writes;
  try {
    writes = await source.project([event]);
  } catch (error) {
    throw new ProjectionError(name, at, `project rejected the parked event at position ${at} again: ${messageOf(error)}`, { cause: error });
  }
  return store.replayParked(name, at, writes, { signal, budget, fence });
}

/**
 * Reads the event at `position` for a replay. With `eventsQuery` the query
 * goes through the store (`loadAndQuery`), so it is retried and its
 * failures are the store's errors; a throwing `readEvents` is a {@link ProjectionError}.
 */
async function readOne<Event extends PositionedEvent, Writes>(
  { name, readEvents, eventsQuery, pipelined }: ReplaySource<Event, Writes>,
  position: number,
  signal: AbortSignal | undefined,
  budget: QueryBudget | undefined,
): Promise<unknown> {
  if (eventsQuery !== undefined && pipelined !== undefined) {
    return (await pipelined.loadAndQuery<Event>(name, () => eventsQuery(position - 1, 1), { signal, budget })).rows;
  }
  budget?.spend(1, "replay", name); // readEvents counts as one query
  try {
    return await readEvents?.(position - 1, 1);
  } catch (error) {
    throw new ProjectionError(name, position, `readEvents failed while reading the parked event at position ${position}: ${messageOf(error)}`, {
      cause: error,
    });
  }
}
