// Read-your-writes for projections: wait, with bounded polling, until a
// projection's checkpoint has reached the position of an event just appended.
import type { LoadResult, OperationOptions } from "./store.js";
import { CheckpointStoreError } from "./errors.js";
import { sleep } from "./sleep.js";
import { checkInteger, checkName, checkOptions, checkPosition, checkSignal, keysOf } from "./validate.js";

/** The longest `timeoutMs` {@link waitForCheckpoint} accepts: 60 s. */
const MAX_TIMEOUT_MS = 60_000;
const FIRST_DELAY_MS = 10;
const MAX_DELAY_MS = 1000;

/**
 * Options of {@link waitForCheckpoint}.
 *
 * @category Operations
 */
export interface WaitForOptions extends OperationOptions {
  /** How long to wait in all, in milliseconds: 0 to 60,000, default 5,000. `0` checks once. */
  readonly timeoutMs?: number | undefined;
}

const WAIT_FOR_KEYS = keysOf<WaitForOptions>()(["signal", "budget", "timeoutMs"]);

/**
 * The checkpoint did not reach the awaited position within `timeoutMs`.
 *
 * @category Errors
 */
export class CheckpointTimeoutError extends CheckpointStoreError {
  /** The class name, for logs. */
  override name = "CheckpointTimeoutError";
  /** The position waited for. */
  readonly position: number;
  /** The checkpoint as last loaded. */
  readonly reached: LoadResult;
  /** How many times it was loaded. */
  readonly polls: number;

  constructor(checkpoint: string, position: number, reached: LoadResult, polls: number, timeoutMs: number) {
    super(
      "waitFor",
      checkpoint,
      `the checkpoint did not reach position ${position} within ${timeoutMs} ms (it is at ${reached.found ? reached.position : "no checkpoint"} after ${polls} loads)`,
    );
    this.position = position;
    this.reached = reached;
    this.polls = polls;
  }
}

/**
 * Resolves when the checkpoint of `name` has reached `position` (is at it or
 * beyond), with the checkpoint as loaded. It loads once at once, then again
 * after 10 ms, 20 ms, 40 ms … at most 1 s apart (one round trip per load),
 * until `timeoutMs` has passed: then it rejects with a
 * {@link CheckpointTimeoutError}. An abort rejects with the signal's reason.
 *
 * Use it for read-your-writes: append an event, note its position, and wait
 * for the projection before reading its read model. With D1 read replication,
 * give it a store on the same session as the read that follows (see the README).
 *
 * @example
 * ```ts
 * const [position] = await appendEvents(env.DB, [event]);
 * ctx.waitUntil(runner.run());
 * await waitForCheckpoint(store, "balances", position, { timeoutMs: 2000 });
 * return Response.json(await readBalance(env.DB, event.account));
 * ```
 *
 * @category Operations
 */
export async function waitForCheckpoint(
  store: { load(name: string, options?: OperationOptions): Promise<LoadResult> },
  name: string,
  position: number,
  options?: WaitForOptions,
): Promise<LoadResult> {
  const valid = checkName("waitFor", name);
  const target = checkPosition("waitFor", valid, position);
  const { timeoutMs: rawTimeout, signal: rawSignal, budget } = checkOptions("waitFor", valid, options, "options", WAIT_FOR_KEYS);
  const timeoutMs = checkInteger("waitFor", valid, rawTimeout, "options.timeoutMs", { min: 0, max: MAX_TIMEOUT_MS, fallback: 5000 });
  const signal = checkSignal("waitFor", valid, rawSignal);
  const deadline = Date.now() + timeoutMs;
  for (let polls = 1, delay = FIRST_DELAY_MS; ; polls++, delay = Math.min(delay * 2, MAX_DELAY_MS)) {
    const checkpoint = await store.load(valid, { signal, budget }); // each poll counts against the budget, if any
    if (checkpoint.found && checkpoint.position >= target) return checkpoint;
    const left = deadline - Date.now();
    if (left <= 0) throw new CheckpointTimeoutError(valid, target, checkpoint, polls, timeoutMs);
    await sleep(Math.min(delay, left), signal);
  }
}
