// The D1 store's group calls: several projections' checkpoints loaded in one
// statement, and their writes and checkpoints committed in one batch (one
// transaction), with the next read riding along. What `ProjectionGroup` uses.
import type { CheckpointCommit, LoadManyAndQueryOptions, LoadManyResult, LoadResult, NamedRunLease, OperationOptions } from "../core/store.js";
import {
  checkCommits,
  checkNames,
  groupVerdict,
  LOAD_MANY_SQL,
  loadManyResults,
  type CheckedCommit,
  type NamedPositionRow,
} from "../sql/group.js";
import { isConflictMarker } from "../sql/checkpoints.js";
import type { D1Calls } from "./calls.js";
import { saveStatement } from "./commit.js";
import { CheckpointConflictError, D1OperationError } from "../core/errors.js";
import { PARK_SQL } from "../sql/parked-events.js";
import type { CheckVerdict } from "./retry.js";
import { checkLease } from "../core/lease.js";
import { LOAD_AND_QUERY_KEYS, OPERATION_KEYS } from "../core/arguments.js";
import { claimStatements } from "./leases.js";
import { checkFunction, checkName, checkOptions, checkSignal } from "../core/validate.js";

type D1Commit = CheckpointCommit<readonly D1PreparedStatement[]>;

function loadManyStatement(calls: D1Calls, names: readonly string[]): D1PreparedStatement {
  return calls.db.prepare(LOAD_MANY_SQL).bind(JSON.stringify(names));
}

async function loadManyOnce(calls: D1Calls, names: readonly string[]): Promise<LoadResult[]> {
  return loadManyResults("load", names, (await calls.all<NamedPositionRow>(loadManyStatement(calls, names))).results);
}

function parseSignal(options: OperationOptions | undefined, known: readonly string[]): AbortSignal | undefined {
  return checkSignal("load", undefined, checkOptions("load", undefined, options, "options", known).signal);
}

/** The checkpoints of `names` in one statement (one retried round trip). */
export async function loadMany(base: D1Calls, names: readonly string[], options: OperationOptions | undefined): Promise<LoadResult[]> {
  const valid = checkNames("load", names);
  const signal = parseSignal(options, OPERATION_KEYS);
  const calls = base.budgeted("load", undefined, options?.budget);
  const checkpoints = await calls.call({ operation: "load", checkpoint: undefined, signal, kind: "read", send: () => loadManyOnce(calls, valid) });
  remember(calls, valid, checkpoints);
  return checkpoints;
}

/**
 * The checkpoints of `names` and the rows of `query(lowest position)`: one
 * batch when this isolate has seen every one of them on this binding (the
 * lowest position seen is the guess, checked in the same snapshot), two round
 * trips otherwise; with a lease, claimed in the same batch.
 */
export async function loadManyAndQuery<Row>(
  base: D1Calls,
  names: readonly string[],
  query: (after: number) => D1PreparedStatement,
  options: LoadManyAndQueryOptions | undefined,
): Promise<LoadManyResult<Row>> {
  const valid = checkNames("load", names);
  const signal = parseSignal(options, LOAD_AND_QUERY_KEYS);
  checkFunction("load", undefined, query, "query", true);
  const lease = options?.lease === undefined ? undefined : checkNamedLease(options.lease);
  const calls = base.budgeted("load", undefined, options?.budget);
  const remembered = valid.map((name) => calls.remembered(name));
  const guess = remembered.every((position) => position !== undefined) ? Math.min(...remembered) : undefined;
  const read = async (after: number): Promise<Row[]> => {
    const statement = calls.checkQuery("load", "", query(after));
    return calls.call({ operation: "load", checkpoint: undefined, signal, kind: "read", send: async () => (await calls.all<Row>(statement)).results });
  };
  const { db } = calls;
  const claim = lease === undefined ? [] : claimStatements(db, lease.name, lease);
  const guessed = guess === undefined ? [] : [calls.checkQuery("load", "", query(guess))];
  const { checkpoints, rows, leased } = await calls.call({
    operation: "load",
    checkpoint: undefined,
    signal,
    kind: lease === undefined ? "read" : "idempotent",
    send: async () => {
      if (claim.length === 0 && guessed.length === 0) return { checkpoints: await loadManyOnce(calls, valid), rows: [] as Row[], leased: true };
      const results = await calls.batch([...claim, loadManyStatement(calls, valid), ...guessed]);
      const loaded = loadManyResults("load", valid, (results[claim.length]?.results ?? []) as NamedPositionRow[]);
      return { checkpoints: loaded, rows: (results[claim.length + 1]?.results ?? []) as Row[], leased: lease === undefined || (results[1]?.results.length ?? 0) === 0 };
    },
  });
  remember(calls, valid, checkpoints);
  if (!leased) return { checkpoints, rows: [], leased };
  const lowest = Math.min(...checkpoints.map((checkpoint) => checkpoint.position));
  return { checkpoints, rows: lowest === guess ? rows : await read(lowest), leased };
}

/**
 * Commits every part in one batch (one transaction), then `query` in the same
 * batch, whose rows are returned. A lost response is checked with one load of
 * every checkpoint: all at their targets → landed; all still at `expected` →
 * sent again; anything else → `outcomeUnknown`. A failed condition is
 * attributed with the same load: the first part whose checkpoint moved is the
 * `CheckpointConflictError`.
 */
export async function commitMany<Row>(
  base: D1Calls,
  commits: readonly D1Commit[],
  query: D1PreparedStatement | undefined,
  options: OperationOptions | undefined,
): Promise<Row[]> {
  const parts = checkCommits("commit", commits, (name, writes, argument) => base.checkStatements("commit", name, writes, argument));
  const signal = checkSignal("commit", undefined, checkOptions("commit", undefined, options, "options", OPERATION_KEYS).signal);
  const calls = base.budgeted("commit", undefined, options?.budget);
  const read = query === undefined ? [] : [calls.checkQuery("commit", "", query)];
  const names = parts.map((part) => part.name);
  const statements = parts.map((part) => statementsOf(calls, part));
  const batch = [...statements.flat(), ...read];
  // Each part's statements (its checkpoint, parked events and writes) count for its checkpoint; the query for all of them.
  const checkpoints = [...statements.flatMap((part, index) => part.map(() => parts[index]?.name)), ...read.map(() => undefined)];
  const loadAll = (): Promise<LoadResult[]> =>
    calls.call({ operation: "commit", checkpoint: undefined, signal, kind: "read", send: () => loadManyOnce(calls, names) });
  const rowsOf = (results: readonly D1Result<Row>[]): Row[] => (read.length === 0 ? [] : (results.at(-1)?.results ?? []));
  const send = async (): Promise<Row[]> => {
    try {
      return rowsOf(await calls.batch<Row>(batch, checkpoints));
    } catch (error) {
      if (!isConflictMarker(error)) throw error;
      const current = await loadAll().catch(() => undefined);
      const moved = parts.findIndex((part, index) => {
        const at = current?.[index];
        return at !== undefined && (at.found ? at.position : null) !== part.expected && part.expected !== undefined;
      });
      const part = parts[moved];
      if (part !== undefined) throw new CheckpointConflictError("commit", part.name, part.expected ?? null, { cause: error });
      throw new D1OperationError("commit", undefined, error, {
        attempts: 1,
        transient: false,
        outcomeUnknown: false,
        reason: `a checkpoint condition failed in the group commit of ${names.map((name) => JSON.stringify(name)).join(", ")}, and no checkpoint could be shown moved; nothing was applied`,
      });
    }
  };
  const check = async (): Promise<CheckVerdict<Row[]>> => {
    const verdict = groupVerdict(parts, await loadManyOnce(calls, names));
    if (verdict === "landed") return { landed: true, value: read.length === 0 ? [] : rowsOf(await calls.batch<Row>(read)) };
    if (verdict === "not landed") return { landed: false };
    return { landed: "unknown", found: "the group's checkpoints are neither all at their targets nor all where they were" };
  };
  const checkable = parts.every((part) => part.expected !== undefined && part.expected !== part.position);
  const rows = await calls.call({ operation: "commit", checkpoint: undefined, signal, kind: checkable ? "checked" : "once", send, check });
  for (const part of parts) calls.remember(part.name, part.position);
  return rows;
}

/** A part's statements: its conditional checkpoint first (a conflict costs no read-model work), its parked events, its writes. */
function statementsOf(calls: D1Calls, part: CheckedCommit<readonly D1PreparedStatement[]>): D1PreparedStatement[] {
  return [
    saveStatement(calls, part.name, part.position, part.expected, false, part.fence),
    ...part.parked.map((event) => calls.db.prepare(PARK_SQL).bind(part.name, event.position, event.error)),
    ...part.writes,
  ];
}

function remember(calls: D1Calls, names: readonly string[], checkpoints: readonly LoadResult[]): void {
  names.forEach((name, index) => {
    calls.remember(name, checkpoints[index]?.position ?? 0);
  });
}

function checkNamedLease(value: NamedRunLease): NamedRunLease {
  checkOptions("load", undefined, value, "options.lease", ["name", "holder", "ttlMs"]);
  const name = checkName("load", (value as { name?: unknown } | null)?.name, "options.lease.name");
  const { holder, ttlMs } = checkLease("load", name, { holder: value.holder, ttlMs: value.ttlMs }, "options.lease");
  return { name, holder, ttlMs };
}
