// A group's projections through a run: their configuration checked, their
// roles (version-roles.ts), their progress, and their summaries.
import type { RowUsage } from "../core/row-usage.js";
import type { CheckpointCommit, VersionFence } from "../core/store.js";
import { CheckpointTypeError } from "../core/errors.js";
import type { PositionedEvent, ProjectedBatch } from "./project-batch.js";
import type { GroupMemberSummary, GroupProjection } from "./group-options.js";
import type { RunEnd } from "./run-options.js";
import type { Role } from "./version-roles.js";
import { checkFunction, checkName, checkOptions, checkVersion, versionCheckpoint } from "../core/validate.js";

/** One projection's progress through a run. */
export interface Member<Event extends PositionedEvent, Writes> {
  readonly projection: GroupProjection<Event, Writes>;
  /** The checkpoint it runs under this run: its name, or `name@version` for a rebuild. */
  readonly checkpoint: string;
  /** For a versioned projection: the state its commits are conditional on. */
  readonly fence: VersionFence | undefined;
  readonly from: number;
  position: number;
  expected: number | null;
  events: number;
  batches: number;
  readonly skipped: number[];
  readonly parked: number[];
  state: "active" | "conflict" | "failed" | "switched" | "inactive";
  error: Error | undefined;
}

/** A projection's share of a batch. */
export interface Part<Event extends PositionedEvent, Writes> {
  readonly member: Member<Event, Writes>;
  readonly projected: ProjectedBatch<Writes>;
  readonly count: number;
}

/** A member at the start of a run, from its role and its loaded checkpoint. */
export function memberOf<Event extends PositionedEvent, Writes>(
  projection: GroupProjection<Event, Writes>,
  role: Role,
  checkpoint: { readonly position: number; readonly found: boolean },
): Member<Event, Writes> {
  return {
    projection,
    checkpoint: role?.checkpoint ?? (projection.version === undefined ? projection.name : versionCheckpoint(projection.name, projection.version)),
    fence: role?.fence,
    from: checkpoint.position,
    position: checkpoint.position,
    expected: checkpoint.found ? checkpoint.position : null,
    events: 0,
    batches: 0,
    skipped: [],
    parked: [],
    state: role === undefined ? "inactive" : "active",
    error: undefined,
  };
}

/** Why a run ended that has no projection left running: a conflict, a failure, a switch, or none that could run. */
export function stoppedEnd<Event extends PositionedEvent, Writes>(members: readonly Member<Event, Writes>[]): RunEnd | "failed" {
  if (members.some((member) => member.state === "conflict")) return "conflict";
  if (members.some((member) => member.state === "failed")) return "failed";
  return members.some((member) => member.state === "switched") ? "switched" : "inactive";
}

export function commitOf<Event extends PositionedEvent, Writes>(member: Member<Event, Writes>, last: number, projected: ProjectedBatch<Writes>): CheckpointCommit<Writes> {
  const commit = { name: member.checkpoint, position: last, writes: projected.writes, expected: member.expected, fence: member.fence };
  return projected.parked.length === 0 ? commit : { ...commit, parked: projected.parked };
}

export function advance<Event extends PositionedEvent, Writes>({ member, projected, count }: Part<Event, Writes>, last: number): void {
  member.expected = member.position = last;
  member.events += count - projected.skipped.length - projected.parked.length;
  member.skipped.push(...projected.skipped);
  member.parked.push(...projected.parked.map((event) => event.position));
  member.batches += 1;
}

export function fail<Event extends PositionedEvent, Writes>(member: Member<Event, Writes>, error: Error): void {
  member.state = "failed";
  member.error = error;
}

export function memberSummary<Event extends PositionedEvent, Writes>(member: Member<Event, Writes>, end: RunEnd | "failed", rows: RowUsage): GroupMemberSummary {
  const ended = member.state === "active" ? end : member.state;
  return {
    ...rows,
    name: member.checkpoint,
    from: member.from,
    to: member.position,
    events: member.events,
    skipped: member.skipped,
    parked: member.parked,
    batches: member.batches,
    conflict: member.state === "conflict",
    caughtUp: ended === "caughtUp",
    yielded: ended === "yielded",
    ended,
    error: member.error,
  };
}

/** The projections of a group's options: 1 to 100, distinct names, each with a `project` function. */
export function checkProjections<Event extends PositionedEvent, Writes>(group: string, value: unknown): GroupProjection<Event, Writes>[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > 100) {
    throw new CheckpointTypeError("configure", group, "options.projections", "must be an array of 1 to 100 projections { name, project, onError? }");
  }
  const versions = new Map<string, (number | undefined)[]>();
  return (value as unknown[]).map((item, index) => {
    const given = checkOptions<Partial<GroupProjection<Event, Writes>>>("configure", group, item as Partial<GroupProjection<Event, Writes>>, `options.projections[${index}]`, ["name", "project", "onError", "version"]);
    if (item === undefined) throw new CheckpointTypeError("configure", group, `options.projections[${index}]`, "must be an object { name, project, onError? }");
    const name = checkName("configure", given.name, `options.projections[${index}].name`);
    const version = given.version === undefined ? undefined : checkVersion("configure", name, given.version, `options.projections[${index}].version`);
    // A name twice is two versions of one projection (the live one and its rebuild), each with its own version.
    const seen = versions.get(name) ?? [];
    if (seen.length > 0 && (version === undefined || seen.includes(version) || seen.includes(undefined))) {
      throw new CheckpointTypeError("configure", group, `options.projections[${index}].name`, `names ${JSON.stringify(name)} twice: list a projection once, or once per version, each with a distinct version`);
    }
    versions.set(name, [...seen, version]);
    return {
      name,
      version,
      project: checkFunction<GroupProjection<Event, Writes>["project"]>("configure", name, given.project, `options.projections[${index}].project`, true),
      onError: checkFunction("configure", name, given.onError, `options.projections[${index}].onError`),
    };
  });
}
