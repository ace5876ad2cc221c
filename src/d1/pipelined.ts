// The D1 store's pipelined calls: a query that rides along with the load or
// the commit in the same round trip, and run leases claimed with the load and
// let go of with the last commit. What `ProjectionRunner` uses with
// `eventsQuery` and `lease`.
import type { CommitOptions, LoadAndQueryOptions, LoadResult, OperationOptions, RunLease } from "../core/store.js";
import { loadResult } from "../sql/checkpoints.js";
import type { D1Calls, PositionRow } from "./calls.js";
import { writeCheckpoint, type Riders } from "./commit.js";
import { checkParkRequests } from "../sql/parked-events.js";
import { checkLease } from "../core/lease.js";
import { claimStatements, DROP_SQL, RELEASE_SQL, RENEW_SQL } from "./leases.js";
import { checkBoolean, checkFunction } from "../core/validate.js";
import { COMMIT_KEYS, LOAD_AND_QUERY_KEYS, parseNamed, parseSave, RELEASE_KEYS } from "../core/arguments.js";

/** What letting go of a lease answered: still held (work was noted), and then the next rows. */
export interface Released<Row> {
  readonly held: boolean;
  readonly rows: Row[];
}

/** `commit` with `query` last in the same batch; its rows only when the batch committed. */
export async function commitAndQuery<Row>(
  base: D1Calls,
  name: string,
  position: number,
  statements: readonly D1PreparedStatement[],
  query: D1PreparedStatement,
  options: CommitOptions | undefined,
): Promise<Row[]> {
  const args = parseSave("commit", name, position, options, COMMIT_KEYS);
  const calls = base.budgeted("commit", args.name, options?.budget);
  const writes = calls.checkStatements("commit", args.name, statements);
  const parked = checkParkRequests("commit", args.name, options?.parked, args.position);
  const read = calls.checkQuery("commit", args.name, query);
  const [rows] = await writeCheckpoint<Row>(calls, "commit", args, writes, { first: [read], again: [read], skip: 0 }, parked);
  return rows?.results ?? [];
}

/** `commitAndQuery` for a leased run's last batch: the same batch lets go of the lease. */
export async function commitAndRelease<Row>(
  base: D1Calls,
  name: string,
  position: number,
  statements: readonly D1PreparedStatement[],
  lease: RunLease,
  query: D1PreparedStatement,
  options: CommitOptions | undefined,
): Promise<Released<Row>> {
  const args = parseSave("commit", name, position, options, COMMIT_KEYS);
  const calls = base.budgeted("commit", args.name, options?.budget);
  const writes = calls.checkStatements("commit", args.name, statements);
  const parked = checkParkRequests("commit", args.name, options?.parked, args.position);
  const riders = releaseRiders(calls, args.name, checkLease("commit", args.name, lease, "lease"), [calls.checkQuery("commit", args.name, query)]);
  return released(await writeCheckpoint<Row>(calls, "commit", args, writes, riders, parked));
}

/**
 * The checkpoint and the rows of `query(checkpoint.position)`: one batch when
 * this isolate has seen the checkpoint on this binding (the guess, checked in
 * the same snapshot), two round trips otherwise; with a lease, claimed in the
 * same batch.
 */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the row type, as with D1's all<T>()
export async function loadAndQuery<Row>(
  base: D1Calls,
  name: string,
  query: (after: number) => D1PreparedStatement,
  options: LoadAndQueryOptions | undefined,
): Promise<{ readonly checkpoint: LoadResult; readonly rows: Row[]; readonly leased: boolean }> {
  const { name: valid, signal } = parseNamed("load", name, options, LOAD_AND_QUERY_KEYS);
  const calls = base.budgeted("load", valid, options?.budget);
  checkFunction("load", valid, query, "query", true);
  const lease = options?.lease === undefined ? undefined : checkLease("load", valid, options.lease, "options.lease");
  const guess = calls.remembered(valid);
  const read = (after: number): Promise<Row[]> => {
    const statement = calls.checkQuery("load", valid, query(after));
    return calls.call({ operation: "load", checkpoint: valid, signal, kind: "read", send: async () => (await calls.all<Row>(statement)).results });
  };
  if (guess === undefined && lease === undefined) {
    const checkpoint = await calls.call({ operation: "load", checkpoint: valid, signal, kind: "read", send: () => calls.load("load", valid) });
    calls.remember(valid, checkpoint.position);
    return { checkpoint, rows: await read(checkpoint.position), leased: true };
  }
  const { db } = calls;
  const claim = lease === undefined ? [] : claimStatements(db, valid, lease);
  const guessed = guess === undefined ? [] : [calls.checkQuery("load", valid, query(guess))];
  const { checkpoint, rows, leased } = await calls.call({
    operation: "load",
    checkpoint: valid,
    signal,
    // Claiming again is harmless: the holder's own claim is not expired, so it stays the holder.
    kind: lease === undefined ? "read" : "idempotent",
    send: async () => {
      const results = await calls.batch([...claim, calls.loadStatement(valid), ...guessed]);
      const checkpoint = loadResult("load", valid, results[claim.length]?.results[0] as PositionRow | undefined);
      const leased = lease === undefined || (results[1]?.results.length ?? 0) === 0;
      return { checkpoint, rows: (results[claim.length + 1]?.results ?? []) as Row[], leased };
    },
  });
  calls.remember(valid, checkpoint.position);
  if (!leased) return { checkpoint, rows: [], leased };
  return { checkpoint, rows: checkpoint.position === guess ? rows : await read(checkpoint.position), leased };
}

/** Lets go of a run lease with `query` in the same round trip; with `drop`, whatever was noted. */
export async function releaseLease<Row>(
  base: D1Calls,
  name: string,
  lease: RunLease,
  query: D1PreparedStatement | undefined,
  options: (OperationOptions & { readonly drop?: boolean | undefined }) | undefined,
): Promise<Released<Row>> {
  const { name: valid, signal } = parseNamed("run", name, options, RELEASE_KEYS);
  const calls = base.budgeted("run", valid, options?.budget);
  const { holder, ttlMs } = checkLease("run", valid, lease, "lease");
  const drop = checkBoolean("run", valid, options?.drop, "options.drop", false);
  if (drop) {
    const statement = calls.db.prepare(DROP_SQL).bind(valid, holder);
    await calls.call({ operation: "run", checkpoint: valid, signal, kind: "idempotent", send: () => calls.run(statement) });
    return { held: false, rows: [] };
  }
  const riders = releaseRiders(calls, valid, { holder, ttlMs }, query === undefined ? [] : [calls.checkQuery("run", valid, query)]);
  let sent = false;
  const results = await calls.call({
    operation: "run",
    checkpoint: valid,
    signal,
    kind: "idempotent",
    send: async () => {
      const first = !sent;
      sent = true;
      const answer = await calls.batch<Row>(first ? riders.first : riders.again);
      return first ? answer.slice(riders.skip) : answer;
    },
  });
  return released(results);
}

/**
 * Letting go of a lease, with `read` after it: release unless work was noted
 * pending, then renew if still held. Sent again (after a lost response), the
 * release could let go of a lease whose pending note the first attempt cleared,
 * so a re-send only renews, which tells "still ours" from "let go" either way.
 */
function releaseRiders(calls: D1Calls, name: string, { holder, ttlMs }: RunLease, read: readonly D1PreparedStatement[]): Riders {
  const renew = calls.db.prepare(RENEW_SQL).bind(name, holder, ttlMs);
  return { first: [calls.db.prepare(RELEASE_SQL).bind(name, holder), renew, ...read], again: [renew, ...read], skip: 1 };
}

/** What the release riders answered: the lease is still held when the renewal matched, and then the read's rows. */
function released<Row>([renewed, read]: readonly D1Result<Row>[]): Released<Row> {
  const held = (renewed?.results.length ?? 0) > 0;
  return { held, rows: held ? (read?.results ?? []) : [] };
}
