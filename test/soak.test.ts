import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { D1CheckpointStore, TRANSIENT_D1_MESSAGES } from "../src/index.js";
import { injectFaults, seededRandom } from "../src/testing.js";
import { appendEvents, ledgerRunner, ledgerTotals, resetLedger } from "./support/ledger.js";

const EVENTS = 1000;
const RUNNERS = 4;
const SEED = 20261124;

// Four overlapping runners over 1,000 events, each through its own D1 wrapper
// that fails about one call in eight (before or after it runs) with a
// transient message, drawn from a seeded generator so a failure reproduces.
it(`soak: ${RUNNERS} runners, ${EVENTS} events, random transient faults → every event exactly once`, async () => {
  await resetLedger();
  const sum = await appendEvents(EVENTS);
  const random = seededRandom(SEED);
  const wrappers = Array.from({ length: RUNNERS }, (_, i) => {
    const faulty = injectFaults(env.DB, random);
    TRANSIENT_D1_MESSAGES.forEach((message, m) => {
      faulty.inject({
        message: `D1_ERROR: ${message}`,
        timing: (i + m) % 2 === 0 ? "before" : "after",
        probability: 1 / 32,
        times: Number.POSITIVE_INFINITY,
      });
    });
    return faulty;
  });

  let conflicts = 0;
  let rounds = 0;
  for (; rounds < 200; rounds++) {
    const outcomes = await Promise.allSettled(
      wrappers.map((faulty, i) =>
        ledgerRunner(new D1CheckpointStore(faulty.db, { retry: { baseDelayMs: 0 } }), 7 + 11 * i).run({ maxBatches: 5 }),
      ),
    );
    // A run may also fail outright (a fault in its own readEvents, or retries
    // exhausted): the next round's runners resume from the checkpoint.
    conflicts += outcomes.filter((o) => o.status === "fulfilled" && o.value.conflict).length;
    const { position } = await new D1CheckpointStore(env.DB).load("ledger");
    if (position === EVENTS) break;
  }

  expect(await ledgerTotals()).toEqual({ sum, applied: EVENTS });
  await expect(new D1CheckpointStore(env.DB).load("ledger")).resolves.toEqual({ position: EVENTS, found: true });
  const injected = wrappers.reduce((n, w) => n + w.faults.length, 0);
  const lostResponses = wrappers.reduce((n, w) => n + w.faults.filter((f) => f.timing === "after").length, 0);
  expect(injected).toBeGreaterThan(20);
  expect(lostResponses).toBeGreaterThan(5);
  expect(conflicts).toBeGreaterThan(0);
  expect(rounds).toBeLessThan(200);
});
