// The caller's hooks (an AdminProjection's reset, replay and rebuild, the
// rate limit, the AdminAuth), called so that a failure is reported as the
// hook's own: a 500 that names the hook and its projection, with the hook's
// error as `cause`, never "the store failed" (decision 0018). The store's
// failures in the handler's own calls stay a 503.
import { messageOf } from "../core/errors.js";
import { Refusal } from "./http.js";

/** The status of a hook's failure: the caller's code failed, neither the store (503) nor the request (4xx). */
export const HOOK_FAILED = 500;

/** How a message names a hook: `the reset hook of "balances"`, `the rateLimit hook`. */
export function hookLabel(hook: string, projection: string | undefined): string {
  return projection === undefined ? `the ${hook} hook` : `the ${hook} hook of ${JSON.stringify(projection)}`;
}

/** A hook that threw or answered what it may not: a 500 naming it (JSON `{ error, hook, projection }`), its error as `cause`. */
export class HookFailure extends Refusal {
  constructor(
    readonly hook: string,
    readonly projection: string | undefined,
    message: string,
    cause?: unknown,
  ) {
    super(HOOK_FAILED, message, {}, { cause, fields: projection === undefined ? { hook } : { hook, projection } });
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
  options: { readonly refuse?: (error: unknown) => Refusal | undefined; readonly note?: string } = {},
): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const refusal = options.refuse?.(error);
    if (refusal !== undefined) throw refusal;
    throw new HookFailure(hook, projection, `${hookLabel(hook, projection)} failed: ${messageOf(error)}${options.note ?? ""}`, error);
  }
}
