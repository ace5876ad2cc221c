// Fault injection for tests (`./testing`): a thin wrapper around a real D1
// binding that fails chosen calls before or after they reach D1, so that a
// test can show what the store does when a response is lost.
import type { D1Client } from "../d1/client.js";
import { interceptD1, type D1Call, type D1CallKind } from "./intercept.js";
import { checkOptions, keysOf } from "../core/validate.js";

/**
 * When an injected fault strikes: `"before"` the call reaches D1 (nothing
 * ran), or `"after"` D1 ran it and committed (the response is lost).
 */
export type FaultTiming = "before" | "after";

/** Which calls fail, how and how often. */
export interface FaultRule {
  /** The call kinds it applies to; default every kind. */
  readonly kinds?: readonly D1CallKind[] | undefined;
  /** Applies only when some statement's SQL matches; default every call. */
  readonly sql?: RegExp | undefined;
  /** Default `"before"`. */
  readonly timing?: FaultTiming | undefined;
  /** The error's message; default `"D1_ERROR: Network connection lost."`. */
  readonly message?: string | undefined;
  /** Matching calls to let through before the first fault; default 0. */
  readonly skip?: number | undefined;
  /** How many faults the rule injects; default 1 (`Infinity` for no end). */
  readonly times?: number | undefined;
  /** The chance that a matching call fails, drawn from the wrapper's `random`; default 1. */
  readonly probability?: number | undefined;
}

/** A rule's keys: a misspelt one is refused rather than ignored. */
const FAULT_RULE_KEYS = keysOf<FaultRule>()(["kinds", "sql", "timing", "message", "skip", "times", "probability"]);

/** An injected fault, as recorded. */
export interface InjectedFault {
  /** The call that failed. */
  readonly call: D1Call;
  /** Whether it failed before reaching D1 or after D1 ran it. */
  readonly timing: FaultTiming;
  /** The message of the error thrown. */
  readonly message: string;
}

/** A D1 client that fails chosen calls. */
export interface FaultyD1<DB extends D1Client> {
  /** Use this in place of the real client. */
  readonly db: DB;
  /** Every round trip attempted through `db`, faulty or not, in order. */
  readonly calls: readonly D1Call[];
  /** Every fault injected so far, in order. */
  readonly faults: readonly InjectedFault[];
  /** Adds a rule; the first rule that matches a call decides it. */
  inject(rule: FaultRule): void;
  /** Removes every rule (the records stay). */
  clear(): void;
}

/** A message D1 really gives for a dropped connection; retryable. */
export const NETWORK_CONNECTION_LOST = "D1_ERROR: Network connection lost.";

interface LiveRule {
  readonly rule: FaultRule;
  skipped: number;
  injected: number;
}

/**
 * Wraps a real D1 binding or session so that chosen calls fail with a D1
 * error message, before or after they run, for testing how code copes with
 * transient errors and lost responses. Everything else goes to the real
 * database unchanged. `random` (default `Math.random`) draws the rules'
 * probabilities: pass a seeded one for reproducible runs.
 */
export function injectFaults<DB extends D1Client>(db: DB, random: () => number = Math.random): FaultyD1<DB> {
  const rules: LiveRule[] = [];
  const calls: D1Call[] = [];
  const faults: InjectedFault[] = [];

  const strike = (call: D1Call): LiveRule | undefined =>
    rules.find((live) => {
      const { kinds, sql, skip = 0, times = 1, probability = 1 } = live.rule;
      if (live.injected >= times) return false;
      if (kinds !== undefined && !kinds.includes(call.kind)) return false;
      if (sql !== undefined && !call.sql.some((text) => sql.test(text))) return false;
      if (live.skipped < skip) {
        live.skipped += 1;
        return false;
      }
      return probability >= 1 || random() < probability;
    });

  const wrapped = interceptD1(db, async (call, send) => {
    calls.push(call);
    const live = strike(call);
    if (live === undefined) return send();
    live.injected += 1;
    const timing = live.rule.timing ?? "before";
    const message = live.rule.message ?? NETWORK_CONNECTION_LOST;
    faults.push({ call, timing, message });
    if (timing === "after") await send();
    throw new Error(message);
  });

  return {
    db: wrapped,
    calls,
    faults,
    inject: (rule) => rules.push({ rule: checkOptions("configure", undefined, rule, "rule", FAULT_RULE_KEYS), skipped: 0, injected: 0 }),
    clear: () => {
      rules.length = 0;
    },
  };
}

/** A small seeded generator (mulberry32) of numbers in [0, 1), for reproducible fault runs. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
