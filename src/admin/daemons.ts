// The projection daemons the overview lists (decision 0025), and their Wake,
// Pause and Resume. The list comes from the caller's hook and is checked here
// as the partitions' is (partitions.ts): a hook, an entry or a status() answer
// that is junk is an error row naming the hook, never a crashed page. An
// action is the daemon's own hook: its failure is a 500 naming it.
import { CheckpointTypeError, messageOf } from "../core/errors.js";
import { typeName } from "../core/validate.js";
import type { DaemonStatus } from "../daemon/types.js";
import { callHook, HookFailure } from "./hooks.js";
import { answer, json, Refusal, segment } from "./http.js";

/**
 * A projection daemon the admin page lists, with Wake, Pause and Resume. A
 * Durable Object stub of a `ProjectionDaemonObject` got by name fits as it is:
 * `env.LEDGER_DAEMON.getByName("ledger")` (or `get(idFromName("ledger"))`).
 * What `status()` answers is checked on every overview; whatever `wake`,
 * `pause` or `resume` throws is answered as that hook's failure, a 500
 * naming it and the daemon (`{ error: 'the wake hook of daemon "ledger" failed: …', hook, daemon }`).
 */
export interface AdminDaemon {
  /**
   * How the page names the daemon and addresses it (`<base>/daemons/<name>/wake`):
   * a stub's own name. Required: optional in the type only because a stub's
   * is (a stub of `newUniqueId()` has none, and is listed as an error).
   */
  readonly name?: string | undefined;
  /** Where the daemon stands: the object's `status()`. */
  status(): Promise<DaemonStatus>;
  /** Runs it at once, even while backing off (the page's Wake). */
  wake(): Promise<void>;
  /** Stops scheduling runs until `resume()` (the page's Pause). */
  pause(): Promise<void>;
  /** Schedules runs again after `pause()` (the page's Resume). */
  resume(): Promise<void>;
}

/** The hook that lists the daemons, as `options.daemons` takes it. */
export type AdminDaemonList = () => Promise<readonly AdminDaemon[]>;

/** A daemon's row: its status, or why it could not be read. */
export interface DaemonView {
  readonly name: string;
  readonly status: DaemonStatus | undefined;
  readonly error: string | undefined;
}

/** What the page does with a daemon. */
type DaemonAction = "wake" | "pause" | "resume";

/** The hook's row when its answer cannot be used at all. */
const HOOK = "(the daemons hook)";
/** The hook, as the option that gave it. */
const OPTION = "options.daemons";
const METHODS = ["status", "wake", "pause", "resume"] as const;
const STATES: readonly unknown[] = ["idle", "running", "backingOff", "paused"];
/** What each action answers: `{ woke: name }`, and the notice `woke ledger`. */
const DONE: Readonly<Record<DaemonAction, string>> = { wake: "woke", pause: "paused", resume: "resumed" };

/**
 * Checks `options.daemons` when the handler is built: a function (the list is
 * asked for on every overview, so that stubs and a changing list are the
 * caller's to make). An array is refused with how to write it.
 */
export function checkDaemons(value: unknown): AdminDaemonList | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "function") return value as AdminDaemonList;
  const hint = Array.isArray(value) ? "not an array: it is asked for on every overview, e.g. () => Promise.resolve([env.LEDGER_DAEMON.getByName(\"ledger\")])" : `got ${typeName(value)}`;
  throw new CheckpointTypeError("configure", undefined, OPTION, `must be a function that answers the daemons, ${hint}`);
}

/** A listed daemon as checked: `addressable` when its name came from the hook (not a placeholder), `error` when it cannot be used. */
interface Entry {
  readonly name: string;
  readonly addressable: boolean;
  readonly daemon: AdminDaemon | undefined;
  readonly error: string | undefined;
}

/** The hook's answer as entries, in its order, or what is wrong with it as a whole. */
function entriesOf(listed: unknown): Entry[] | string {
  if (!Array.isArray(listed)) return `${OPTION} must answer an array of daemons (stubs of ProjectionDaemonObject), got ${typeName(listed)}`;
  const seen = new Set<string>();
  return (listed as unknown[]).map((daemon, index) => {
    const unnamed = (error: string): Entry => ({ name: `(daemon ${index})`, addressable: false, daemon: undefined, error });
    if (typeof daemon !== "object" || daemon === null) return unnamed(`${OPTION}[${index}] must be a daemon (a stub of a ProjectionDaemonObject), got ${typeName(daemon)}`);
    const { name } = daemon as { readonly name?: unknown };
    if (typeof name !== "string" || name.length === 0) {
      return unnamed(`${OPTION}[${index}].name must be a non-empty string (get the stub by name: getByName or idFromName), got ${typeof name === "string" ? "an empty string" : typeName(name)}`);
    }
    const failed = (error: string): Entry => ({ name, addressable: true, daemon: undefined, error });
    const missing = METHODS.find((method) => typeof (daemon as Record<string, unknown>)[method] !== "function");
    if (missing !== undefined) return failed(`${OPTION}[${index}].${missing} must be a function, got ${typeName((daemon as Record<string, unknown>)[missing])}`);
    if (seen.has(name)) return failed(`${OPTION}[${index}]: the name ${JSON.stringify(name)} is listed twice`);
    seen.add(name);
    return { name, addressable: true, daemon: daemon as AdminDaemon, error: undefined };
  });
}

/**
 * The daemons' rows, in the hook's order, their statuses asked for at once.
 * The hook failing or answering something other than an array is one error
 * row; an entry that is not a named daemon, or whose `status()` fails or
 * answers something other than a status, is an error row of its own.
 */
export async function daemonViews(list: AdminDaemonList): Promise<DaemonView[]> {
  let listed: unknown;
  try {
    listed = await list();
  } catch (error) {
    return [{ name: HOOK, status: undefined, error: `the daemons hook failed: ${messageOf(error)}` }];
  }
  const entries = entriesOf(listed);
  if (typeof entries === "string") return [{ name: HOOK, status: undefined, error: entries }];
  return Promise.all(entries.map((entry) => daemonView(entry)));
}

async function daemonView({ name, daemon, error }: Entry): Promise<DaemonView> {
  if (daemon === undefined) return { name, status: undefined, error };
  let status: unknown;
  try {
    status = await daemon.status();
  } catch (failure) {
    return { name, status: undefined, error: `status() failed: ${messageOf(failure)}` };
  }
  const problem = statusProblem(status);
  return problem === undefined ? { name, status: status as DaemonStatus, error: undefined } : { name, status: undefined, error: `status() of ${name} answered ${problem}` };
}

/** What is wrong with a `status()` answer (an RPC answer nothing has checked), or `undefined`. The last run is shown as far as it can be. */
function statusProblem(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null) return `${typeName(value)}, not a DaemonStatus`;
  const { state, pending, attempts, runs, lastError, nextRunAt, lastRun } = value as Partial<Record<keyof DaemonStatus, unknown>>;
  if (!STATES.includes(state)) return `state ${typeof state === "string" ? JSON.stringify(state) : typeName(state)}, not idle, running, backingOff or paused`;
  if (typeof pending !== "boolean") return `pending ${typeName(pending)}, not a boolean`;
  for (const [key, count] of [["attempts", attempts], ["runs", runs]] as const) {
    if (typeof count !== "number" || !Number.isSafeInteger(count) || count < 0) return `${key} ${typeof count === "number" ? String(count) : typeName(count)}, not a count`;
  }
  if (lastError !== undefined && typeof lastError !== "string") return `lastError ${typeName(lastError)}, not a string`;
  if (nextRunAt !== undefined && !(nextRunAt instanceof Date && Number.isFinite(nextRunAt.getTime()))) return `nextRunAt ${typeName(nextRunAt)}, not a Date`;
  if (lastRun !== undefined && (typeof lastRun !== "object" || lastRun === null)) return `lastRun ${typeName(lastRun)}, not a run's outcome`;
  return undefined;
}

/**
 * Runs an action on the daemon the hook lists as `name`: a 404 when it lists
 * none; the hook's failure, or an entry of that name it may not answer (no
 * such method, listed twice), a 500 naming the daemons hook; the action's
 * own failure a 500 naming it and the daemon.
 */
async function act(list: AdminDaemonList, name: string, action: DaemonAction): Promise<void> {
  const entries = entriesOf(await callHook("daemons", undefined, () => list()));
  if (typeof entries === "string") throw new HookFailure("daemons", undefined, entries);
  const named = entries.filter((entry) => entry.addressable && entry.name === name);
  const daemon = named[0]?.daemon;
  if (named.length === 0) throw new Refusal(404, `no daemon named ${name} is listed here`);
  const bad = named.find((entry) => entry.error !== undefined)?.error;
  if (bad !== undefined || daemon === undefined) throw new HookFailure("daemons", undefined, bad ?? `${OPTION} answered ${name} without its methods`);
  await callHook(action, name, () => daemon[action](), { owner: "daemon" });
}

/** Where the daemon routes answer: the handler's base path, whether to answer JSON, and its method check. */
export interface DaemonRequest {
  readonly path: string;
  readonly base: string;
  readonly asJson: boolean;
  readonly allow: (expected: "GET" | "POST") => void;
}

/**
 * The daemon routes, after the handler has authorized the request (and, for
 * a write with browser credentials, checked its origin): `GET <base>/api/daemons`
 * and `POST <base>/daemons/<name>/wake|pause|resume` (JSON, or a 303 back to
 * the overview with a notice). `undefined` for any other path.
 */
export async function daemonRoute(list: AdminDaemonList | undefined, request: DaemonRequest): Promise<Response | undefined> {
  const { path, base, asJson, allow } = request;
  if (path === "/api/daemons") {
    allow("GET");
    return json({ daemons: list === undefined ? [] : await daemonViews(list) });
  }
  const matched = /^\/daemons\/([^/]+)\/(wake|pause|resume)$/.exec(path);
  if (matched === null) return undefined;
  allow("POST");
  const name = segment(matched[1] ?? "");
  const action = matched[2] as DaemonAction;
  if (list === undefined) throw new Refusal(404, `no daemon named ${name} is listed here`);
  await act(list, name, action);
  return answer(asJson, base, { [DONE[action]]: name }, action === "wake" ? 202 : 200, `${DONE[action]} ${name}`);
}
