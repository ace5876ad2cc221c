/**
 * Projections that run themselves (`@synapse-es/checkpointstore-d1/daemon`):
 * a Durable Object per projection, woken by appends, one run at a time,
 * chained across invocations past D1's queries per invocation, retried with
 * capped backoff, with a cron as the safety net (decision 0025). Its alarm is
 * an {@link AlarmSchedule}, so objects with alarm work of their own can embed a
 * {@link ProjectionDaemon} beside it. The core never imports this entry.
 *
 * @packageDocumentation
 */
export { AlarmSchedule } from "./daemon/alarm-schedule.js";
export { DEFAULT_DAEMON_BUDGET, ProjectionDaemon } from "./daemon/daemon.js";
export { ProjectionDaemonObject } from "./daemon/daemon-object.js";
export type { DaemonOptions, DaemonRun, DaemonStatus, DaemonSwitch, DaemonSwitchStore, RunOutcome } from "./daemon/types.js";
