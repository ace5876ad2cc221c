// Test helpers for code that uses the store: count D1 round trips, inject
// D1 faults. Thin wrappers around a real D1 binding, never a fake database.
export type { D1Client } from "./d1/client.js";
export {
  injectFaults,
  NETWORK_CONNECTION_LOST,
  seededRandom,
  type FaultRule,
  type FaultTiming,
  type FaultyD1,
  type InjectedFault,
} from "./testing/faults.js";
export {
  countD1,
  interceptD1,
  type CountedD1,
  type D1Call,
  type D1CallKind,
  type D1Interceptor,
} from "./testing/intercept.js";
export { settleDaemon, type SettlingDaemon } from "./testing/settle-daemon.js";
export type { DaemonStatus, RunOutcome } from "./daemon/types.js";
