// Projecting one batch of events, shared by ProjectionRunner and
// ProjectionGroup: when `project` throws for the batch, find the events at
// fault one by one, ask `onError` about each (skip, park or stop), and
// project the events it kept.
import type { ParkRequest } from "../core/store.js";
import { CheckpointStoreError, messageOf } from "../core/errors.js";

/**
 * The least an event must carry: its position in the log, a positive safe integer.
 *
 * @category Runner
 */
export interface PositionedEvent {
  /** Position in the event log; strictly ascending. */
  readonly position: number;
}

/**
 * What `onError` decides for an event that `project` rejected: `"skip"` it,
 * `"park"` it (recorded in `parked_events` in the same transaction, for a
 * later replay), or `"stop"` the run.
 *
 * @category Runner
 */
export type EventErrorDecision = "skip" | "park" | "stop";

/**
 * `project` threw for an event, or the event source broke its contract.
 *
 * @category Errors
 */
export class ProjectionError extends CheckpointStoreError {
  /** The class name, for logs. */
  override name = "ProjectionError";
  /** The position of the event at fault, when there is one. */
  readonly position: number | undefined;

  constructor(checkpoint: string, position: number | undefined, message: string, options?: { cause?: unknown }) {
    super("run", checkpoint, message, options);
    this.position = position;
  }
}

/** A projection as a batch is projected with it. */
export interface BatchProjection<Event extends PositionedEvent, Writes> {
  readonly name: string;
  readonly project: (events: readonly Event[]) => Writes | Promise<Writes>;
  readonly onError: ((error: unknown, event: Event) => EventErrorDecision | Promise<EventErrorDecision>) | undefined;
  /** Whether the store can park events (it has `replayParked`). */
  readonly canPark: boolean;
}

/** A projected batch: the writes, and the positions `onError` chose to skip or park. */
export interface ProjectedBatch<Writes> {
  readonly writes: Writes;
  readonly skipped: number[];
  readonly parked: ParkRequest[];
}

/** Projects a batch; when it throws, finds the events at fault and asks `onError`. */
export async function projectBatch<Event extends PositionedEvent, Writes>(
  { name, project, onError, canPark }: BatchProjection<Event, Writes>,
  batch: readonly Event[],
): Promise<ProjectedBatch<Writes>> {
  try {
    return { writes: await project(batch), skipped: [], parked: [] };
  } catch (batchError) {
    const kept: Event[] = [];
    const skipped: number[] = [];
    const parked: ParkRequest[] = [];
    for (const event of batch) {
      try {
        await project([event]);
        kept.push(event);
      } catch (error) {
        const decision = onError === undefined ? "stop" : await onError(error, event);
        if (decision === "skip") skipped.push(event.position);
        else if (decision === "park") {
          if (!canPark) {
            throw new ProjectionError(name, event.position, "onError answered \"park\", but the store cannot park events (it has no replayParked)", { cause: error });
          }
          parked.push({ position: event.position, error: messageOf(error) });
        } else {
          throw new ProjectionError(name, event.position, `project rejected the event at position ${event.position}: ${messageOf(error)}`, {
            cause: error,
          });
        }
      }
    }
    const left = [...skipped, ...parked.map((event) => event.position)].sort((a, b) => a - b);
    if (left.length === 0) {
      throw new ProjectionError(name, undefined, `project rejected a batch but none of its events alone: ${messageOf(batchError)}`, {
        cause: batchError,
      });
    }
    try {
      return { writes: await project(kept), skipped, parked };
    } catch (error) {
      throw new ProjectionError(
        name,
        undefined,
        `project rejected the ${kept.length} events it had accepted one by one, after skipping ${left.join(", ")}: ${messageOf(error)}`,
        { cause: error },
      );
    }
  }
}

/** The event source must return at most `limit` events after `after`, strictly ascending. */
export function checkBatch(name: string, after: number, batch: unknown, limit: number): asserts batch is readonly PositionedEvent[] {
  if (!Array.isArray(batch) || batch.length > limit) {
    throw new ProjectionError(name, undefined, `the event source must return an array of at most ${limit} events`);
  }
  let previous = after;
  for (const event of batch as unknown[]) {
    const position = (event as { position?: unknown } | null)?.position;
    if (typeof position !== "number" || !Number.isSafeInteger(position) || position <= previous) {
      throw new ProjectionError(
        name,
        undefined,
        `the event source returned position ${String(position)} after ${previous}: positions must be safe integers, strictly ascending, after the checkpoint`,
      );
    }
    previous = position;
  }
}
