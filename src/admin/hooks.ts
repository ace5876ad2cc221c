// The caller's hooks (an AdminProjection's reset, replay and rebuild, an
// AdminDaemon's wake, pause and resume, the rate limit, the AdminAuth),
// called so that a failure is reported as the hook's own: a 500 that names
// the hook and its projection or daemon, with the hook's error as `cause`,
// never "the store failed" (decision 0018). The store's failures in the
// handler's own calls stay a 503.
import { messageOf } from "../core/errors.js";
import { Refusal } from "./http.js";

/** The status of a hook's failure: the caller's code failed, neither the store (503) nor the request (4xx). */
export const HOOK_FAILED = 500;

/** What a hook belongs to: a projection's (reset, replay, rebuild) or a listed daemon's (wake, pause, resume). */
export type HookOwner = "projection" | "daemon";

/** How a message names a hook: `the reset hook of "balances"`, `the wake hook of daemon "ledger"`, `the rateLimit hook`. */
export function hookLabel(hook: string, projection: string | undefined, owner: HookOwner = "projection"): string {
  if (projection === undefined) return `the ${hook} hook`;
  return `the ${hook} hook of ${owner === "daemon" ? "daemon " : ""}${JSON.stringify(projection)}`;
}

/**
 * A hook that threw or answered what it may not: a 500 naming it (JSON
 * `{ error, hook, projection }`, or `{ error, hook, daemon }` for a daemon's),
 * its error as `cause`.
 */
export class HookFailure extends Refusal {
  constructor(
    readonly hook: string,
    readonly projection: string | undefined,
    message: string,
    cause?: unknown,
    owner: HookOwner = "projection",
  ) {
    super(HOOK_FAILED, message, {}, { cause, fields: projection === undefined ? { hook } : { hook, [owner]: projection } });
  }
}

/**
 * Calls a hook. Whatever it throws (synchronously or not) is a
 * {@link HookFailure}, `note` appended to its message, unless `refuse` makes
 * it a refusal of its own (a replay the projection rejects again is a 409).
 */
export async function callHook<T>(
  hook: string,
  projection: string | undefined,
  call: () => T | Promise<T>,
  options: { readonly refuse?: (error: unknown) => Refusal | undefined; readonly note?: string; readonly owner?: HookOwner } = {},
): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const refusal = options.refuse?.(error);
    if (refusal !== undefined) throw refusal;
    const owner = options.owner ?? "projection";
    throw new HookFailure(hook, projection, `${hookLabel(hook, projection, owner)} failed: ${messageOf(error)}${options.note ?? ""}`, error, owner);
  }
}
