// The admin handler: a fetch-style function that serves the admin page and
// its JSON routes under a base path, and answers `undefined` for any other
// path so that it mounts in any Worker or router.
import { withRecentRuns, type AdminRunLog } from "./costs.js";
import type { D1CheckpointStore } from "../d1/checkpoint-store.js";
import { CheckpointRangeError, CheckpointStoreError, CheckpointTypeError, messageOf, ProjectionVersionError } from "../core/errors.js";
import { IS_PARKED_SQL } from "../sql/parked-events.js";
import { ProjectionError } from "../runner/project-batch.js";
import type { ProjectionStatus } from "../sql/status.js";
import { checkFunction, checkMethods, checkOptions, checkPosition, hasMethods, keysOf, typeName } from "../core/validate.js";
import type { AdminAuth } from "./auth.js";
import { checkDaemons, daemonRoute, daemonViews, type AdminDaemon } from "./daemons.js";
import { callHook, hookLabel, HookFailure } from "./hooks.js";
import { answer, back, html, json, MAX_NOTICE, positionParameter, readForm, Refusal, segment } from "./http.js";
import { renderLogin, renderMessage, renderOverview, renderParked, STYLESHEET, type PageContext } from "./page.js";
import { isSameOrigin } from "./session.js";
import { partitionViews } from "./partitions.js";
import { checkRebuild, rebuildOptions, rebuildRefusals, type AdminRebuild } from "./rebuilds.js";
import { parkedPage, projectionViews, type EventTimeAfter } from "./views.js";

/** What a request to the admin handler does, for the rate-limit hook: `login` for `<base>/login`, `read` for GET and HEAD, `write` for any other method. */
export type AdminAction = "login" | "read" | "write";

/**
 * What the admin may do with one D1 projection. Give only what it should
 * offer. The hooks are your code: whatever one throws is answered as its
 * failure, a 500 naming the hook and the projection
 * (`{ error: 'the reset hook of "balances" failed: …', hook, projection }`),
 * never as the store's 503.
 */
export interface AdminProjection {
  /**
   * Applies a parked event again: `true` when applied, `false` when it was
   * not parked. Typically `(position) => runner.replay(position)`. A
   * `ProjectionError` (the projection rejects it again) is a 409 and the
   * event stays parked. For a projection that runs in a `ProjectionGroup`
   * (which has no `replay`), build a `ProjectionRunner` for that one
   * projection, with the group member's name, `version`, `project` and
   * `onError`, and the group's store and event source, and use it only for
   * `replay`.
   */
  readonly replay?: ((position: number) => Promise<boolean>) | undefined;
  /**
   * Clears the read model and its checkpoint in one batch, so that `rebuild`
   * (or your cron) projects it again from the first event. Clear the live
   * version's own tables, never a read name: once a version has been switched
   * to, a read name is a view, and `DELETE FROM balances` fails. The live
   * version's record names its tables (`store.versions(name)`); before the
   * first rebuild there is none, and the read names are the tables:
   *
   * ```ts
   * reset: async () => {
   *   const live = (await store.versions("balances")).find((v) => v.state === "live");
   *   const tables = Object.values(live?.tables ?? { balances: "balances" }); // read name → table
   *   await env.DB.batch([...tables.map((table) => env.DB.prepare(`DELETE FROM ${table}`)), store.resetStatement("balances")]);
   * },
   * ```
   */
  readonly reset?: (() => Promise<void>) | undefined;
  /**
   * Runs after a reset or a Rebuild: typically `() => runner.run({ budget: 900 })`.
   * In `waitUntil` when the handler has it, and then its failure is logged;
   * without it, before the answer, and its failure is the answer (a 500
   * that says the reset was done, or the rebuild started).
   */
  readonly rebuild?: (() => Promise<unknown>) | undefined;
  /**
   * Offers Rebuild: the version to start beside the live one, which the page
   * starts with `store.startRebuild(name, version, { tables, create, liveTables })`
   * (the versioned runner or group, run by `rebuild` or your cron, then
   * builds it). Rebuild is shown disabled, with the reason, whenever the
   * store would refuse it: the version is live (declare the next one), another
   * version is building, a table is not its own or has rows. The page shows
   * the rebuild's progress with Switch (enabled once it has caught up with
   * the live version) and Abandon, and a retired version with Drop.
   */
  readonly startRebuild?: AdminRebuild | undefined;
}

/** A Durable Object partition the page lists: a name, and its projections' statuses (typically an RPC method of its stub). */
export interface AdminPartition {
  /** How the page names the partition, e.g. `history/alice`. */
  readonly name: string;
  /** Its projections' statuses, e.g. `() => stub.statuses()` (an RPC method of the object). */
  readonly statuses: () => Promise<readonly ProjectionStatus[]>;
}

/** Options of {@link adminHandler}. */
export interface AdminHandlerOptions {
  /** Where the page lives: `/admin` by default. Requests outside it are answered `undefined`. */
  readonly basePath?: string | undefined;
  /** The page's title; default `"Projections"`. */
  readonly title?: string | undefined;
  /** The D1 store whose projections are listed (every checkpoint in its database). */
  readonly store: D1CheckpointStore;
  /** Who may use the page: `bearerToken(token)`, `cloudflareAccess({ … })`, or your own {@link AdminAuth}. */
  readonly auth: AdminAuth;
  /** The newest event's position for `lag`: a number, or a query such as `SELECT MAX(position) FROM events`. */
  readonly newest?: number | D1PreparedStatement | undefined;
  /**
   * Lag as time: the query of the time of the first event after a position
   * (first row's first column, ms since the epoch or a date text). All lagging
   * projections' queries go in one batch.
   */
  readonly eventTimeAfter?: EventTimeAfter | undefined;
  /** The projections the page may act on, by checkpoint name. */
  readonly projections?: Readonly<Record<string, AdminProjection>> | undefined;
  /** The Durable Object partitions to list; called on every overview, so keep the list short. */
  readonly partitions?: (() => Promise<readonly AdminPartition[]>) | undefined;
  /**
   * The projection daemons to list, with Wake, Pause and Resume: stubs of
   * `ProjectionDaemonObject`s got by name, e.g. `() => Promise.resolve([env.LEDGER_DAEMON.getByName("ledger")])`.
   * Called on every overview and action, so keep the list short.
   */
  readonly daemons?: (() => Promise<readonly AdminDaemon[]>) | undefined;
  /**
   * A rate limit: answer `false` to refuse a request with 429. Every request
   * under the base path goes through it first, before it is authorized or its
   * body read (the login, the logout and the stylesheet included). For example
   * with the Workers rate-limiting binding, keyed by action and client address:
   *
   * ```ts
   * rateLimit: async (request, action) =>
   *   (await env.ADMIN_LIMIT.limit({ key: action + ":" + (request.headers.get("cf-connecting-ip") ?? "") })).success,
   * ```
   */
  readonly rateLimit?: ((request: Request, action: AdminAction) => boolean | Promise<boolean>) | undefined;
  /** Keeps a rebuild going after the response: pass `ctx.waitUntil.bind(ctx)`. Without it, a rebuild runs before the answer (and its failure is the answer). */
  readonly waitUntil?: ((promise: Promise<unknown>) => void) | undefined;
  /** The run log (a `D1RunLog` from `./metrics`, given to the runners' metrics too): the overview then shows rows written per 1,000 events over each projection's recent runs. */
  readonly runLog?: AdminRunLog | undefined;
}

/** The handler: a `Response` for requests under the base path, `undefined` for any other. */
export type AdminHandler = (request: Request) => Promise<Response | undefined>;

const OPTION_KEYS = keysOf<AdminHandlerOptions>()(["basePath", "title", "store", "auth", "newest", "eventTimeAfter", "projections", "partitions", "daemons", "rateLimit", "waitUntil", "runLog"]);
/** The most projections the overview lists. */
const MAX_LISTED = 1000;
/** Parked events per page. */
const PARKED_PAGE = 50;

function checkBase(value: unknown): string {
  if (value === undefined) return "/admin";
  if (typeof value !== "string" || !/^(\/[A-Za-z0-9._~-]+)+$/.test(value)) {
    throw new CheckpointTypeError("configure", undefined, "options.basePath", "must be a path such as /admin (no trailing slash)");
  }
  return value;
}

/**
 * The admin page as a fetch-style handler: the status of every D1
 * projection (position, lag in events and in time, time since it moved,
 * parked events), each projection's parked events paged by position, the
 * Durable Object partitions you list, Reset and Replay for the projections
 * you give, and the projection daemons you list with Wake, Pause and Resume. Server-rendered, no script, under a strict CSP;
 * writes of browser credentials must come from the page's own origin; rows
 * other tools wrote badly are shown as corrupt, never a 500. JSON routes
 * under `<base>/api/` serve scripts.
 *
 * @example
 * ```ts
 * import { adminHandler, bearerToken } from "@synapse-es/checkpointstore-d1/admin";
 *
 * export default {
 *   async fetch(request, env, ctx) {
 *     const admin = adminHandler({
 *       store: new D1CheckpointStore(env.DB),
 *       auth: bearerToken(env.ADMIN_TOKEN),
 *       newest: env.DB.prepare("SELECT MAX(position) FROM events"),
 *       projections: { balances: { replay: (p) => balances(env).replay(p) } },
 *       waitUntil: ctx.waitUntil.bind(ctx),
 *     });
 *     return (await admin(request)) ?? app(request, env, ctx);
 *   },
 * } satisfies ExportedHandler<Env>;
 * ```
 */
export function adminHandler(options: AdminHandlerOptions): AdminHandler {
  const given = checkOptions("configure", undefined, options, "options", OPTION_KEYS);
  const base = checkBase(given.basePath);
  const title = given.title ?? "Projections";
  if (typeof title !== "string" || title.length === 0 || title.length > 100) throw new CheckpointTypeError("configure", undefined, "options.title", "must be a string of 1 to 100 characters");
  const store = checkMethods<D1CheckpointStore>("configure", undefined, given.store, "options.store", ["statuses", "parked"], "a D1CheckpointStore");
  const auth = checkMethods<AdminAuth>("configure", undefined, given.auth, "options.auth", ["authorize"], "an AdminAuth such as bearerToken(token)");
  const projections = checkOptions<Record<string, AdminProjection>>("configure", undefined, given.projections, "options.projections");
  /** Each projection's checked `startRebuild`. */
  const rebuilds = new Map<string, AdminRebuild>();
  for (const [name, projection] of Object.entries(projections)) {
    const actions = checkOptions("configure", name, projection, `options.projections.${name}`, ["replay", "reset", "rebuild", "startRebuild"]);
    for (const key of ["replay", "reset", "rebuild"] as const) checkFunction("configure", name, actions[key], `options.projections.${name}.${key}`);
    const rebuild = checkRebuild(name, actions.startRebuild, `options.projections.${name}.startRebuild`);
    if (rebuild !== undefined) rebuilds.set(name, rebuild);
  }
  if (rebuilds.size > 0) checkMethods("configure", undefined, store, "options.store", ["startRebuild", "switchVersion", "dropVersion"], "a D1CheckpointStore with versions");
  const eventTimeAfter = checkFunction("configure", undefined, given.eventTimeAfter, "options.eventTimeAfter");
  const partitions = checkFunction("configure", undefined, given.partitions, "options.partitions");
  const daemons = checkDaemons(given.daemons);
  const rateLimit = checkFunction("configure", undefined, given.rateLimit, "options.rateLimit");
  const waitUntil = checkFunction("configure", undefined, given.waitUntil, "options.waitUntil");
  const runLog = given.runLog === undefined ? undefined : checkMethods<AdminRunLog>("configure", undefined, given.runLog, "options.runLog", ["recent"], "a run log such as a D1RunLog");
  const newest = given.newest;
  if (newest !== undefined && typeof newest !== "number" && !hasMethods(newest, ["bind", "all", "first"])) {
    throw new CheckpointTypeError("configure", undefined, "options.newest", "must be a position or a D1PreparedStatement");
  }
  if (typeof newest === "number") checkPosition("configure", undefined, newest, "options.newest");
  const context: PageContext = {
    base,
    title,
    logout: auth.login !== undefined,
    actions: (name) => {
      const projection = Object.hasOwn(projections, name) ? projections[name] : undefined;
      return { reset: projection?.reset !== undefined, replay: projection?.replay !== undefined, versions: rebuilds.has(name) };
    },
  };
  /**
   * Runs a projection's `rebuild` hook after `done` (a reset, a started
   * rebuild): in `waitUntil` when given, its failure logged; otherwise before
   * the answer, its failure the answer.
   */
  const run = async (name: string, rebuild: (() => Promise<unknown>) | undefined, done: string): Promise<void> => {
    if (rebuild === undefined) return;
    if (waitUntil === undefined) {
      await callHook("rebuild", name, rebuild, { note: ` (${done})` });
      return;
    }
    const rebuilding = callHook("rebuild", name, rebuild, { note: ` (${done})` }).then(
      () => undefined,
      (error: unknown) => {
        console.error(messageOf(error), error instanceof Error ? error.cause : error);
      },
    );
    waitUntil(rebuilding);
  };
  const projectionOf = (name: string): AdminProjection => {
    const projection = Object.hasOwn(projections, name) ? projections[name] : undefined;
    if (projection === undefined) throw new Refusal(404, `no projection named ${name} is configured here`);
    return projection;
  };

  const limit = async (request: Request, action: AdminAction): Promise<void> => {
    if (rateLimit !== undefined && !(await callHook("rateLimit", undefined, () => rateLimit(request, action)))) throw new Refusal(429, "too many requests: try again later", { "retry-after": "60" });
  };

  const route = async (request: Request, url: URL, path: string, wantsJson: boolean): Promise<Response> => {
    const method = request.method === "HEAD" ? "GET" : request.method;
    const allow = (expected: "GET" | "POST"): void => {
      if (method !== expected) throw new Refusal(405, `use ${expected === "GET" ? "GET or HEAD" : "POST"}`, { allow: expected === "GET" ? "GET, HEAD" : "POST" });
    };
    const writing = method !== "GET";
    // Every route, first: before authorizing, so that guessing credentials (a bearer token, a forged Access token) is limited too.
    await limit(request, path === "/login" ? "login" : writing ? "write" : "read");
    if (path === "/style.css") {
      allow("GET");
      return new Response(STYLESHEET, { headers: { "content-type": "text/css; charset=utf-8", "cache-control": "max-age=300", "x-content-type-options": "nosniff" } });
    }
    if (path === "/login" || path === "/logout") {
      allow("POST");
      if (auth.login === undefined || auth.logout === undefined) throw new Refusal(404, "this admin page has no login form");
      if (!isSameOrigin(request, url)) throw new Refusal(403, "cross-origin request refused");
      if (path === "/logout") return back(base, undefined, { "set-cookie": await callHook("auth.logout", undefined, () => auth.logout?.(url) ?? "") });
      const secret = (await readForm(request)).get("token") ?? "";
      const cookie = await callHook("auth.login", undefined, () => auth.login?.(secret, url));
      if (cookie === undefined) return html(renderLogin(context, "Wrong token."), 401);
      return back(base, undefined, { "set-cookie": cookie });
    }

    const identity = await callHook("auth.authorize", undefined, () => auth.authorize(request, base));
    if (identity === undefined) {
      if (path === "" && method === "GET" && !wantsJson) {
        return auth.login !== undefined ? html(renderLogin(context)) : html(renderMessage(context, "Not signed in", "Sign in to use this page."), 401);
      }
      throw new Refusal(401, "authorization required", { "www-authenticate": 'Bearer realm="admin"' });
    }
    if (writing && identity.ambient && !isSameOrigin(request, url)) throw new Refusal(403, "cross-origin request refused");
    const asJson = wantsJson || !identity.ambient;
    const notice = url.searchParams.get("notice")?.slice(0, MAX_NOTICE) ?? undefined;

    if (path === "" || path === "/api/projections") {
      allow("GET");
      const views = await projectionViews(store, newest, eventTimeAfter, MAX_LISTED);
      const { lagMsError } = views;
      const { projections: listed, runLogError } = runLog === undefined ? { projections: views.projections, runLogError: undefined } : await withRecentRuns(runLog, views.projections);
      if (path !== "" || asJson) return json({ projections: listed, ...(lagMsError === undefined ? {} : { lagMsError }), ...(runLogError === undefined ? {} : { runLogError }) });
      const [refusals, listedPartitions, listedDaemons] = await Promise.all([
        rebuildRefusals(store.db, rebuilds),
        partitions === undefined ? undefined : partitionViews(partitions),
        daemons === undefined ? undefined : daemonViews(daemons),
      ]);
      return html(renderOverview(context, { projections: listed, lagMsError, rebuilds: refusals, partitions: listedPartitions, daemons: listedDaemons, notice, costs: runLog !== undefined, runLogError }));
    }
    if (path === "/api/partitions") {
      allow("GET");
      return json({ partitions: partitions === undefined ? [] : await partitionViews(partitions) });
    }
    const daemonAnswer = await daemonRoute(daemons, { path, base, asJson, allow });
    if (daemonAnswer !== undefined) return daemonAnswer;
    const parked = /^(\/api)?\/projections\/([^/]+)\/parked$/.exec(path);
    if (parked !== null) {
      allow("GET");
      const name = segment(parked[2] ?? "");
      const after = positionParameter(url.searchParams.get("after"), "after");
      const page = await parkedPage(store, name, after, PARKED_PAGE);
      if (parked[1] !== undefined || asJson) return json({ name, ...page });
      return html(renderParked(context, name, page, notice));
    }
    const reset = /^\/projections\/([^/]+)\/reset$/.exec(path);
    if (reset !== null) {
      allow("POST");
      const name = segment(reset[1] ?? "");
      const projection = projectionOf(name);
      const { reset: resetHook } = projection;
      if (resetHook === undefined) throw new Refusal(404, `${name} cannot be reset here`);
      await callHook("reset", name, () => resetHook.call(projection));
      await run(name, projection.rebuild, "the reset was done");
      return answer(asJson, base, { reset: name, rebuilding: projection.rebuild !== undefined }, 202, `reset ${name}`);
    }
    const versions = /^\/projections\/([^/]+)\/versions(?:\/([^/]+)\/(switch|drop))?$/.exec(path);
    if (versions !== null) {
      allow("POST");
      const name = segment(versions[1] ?? "");
      const projection = projectionOf(name);
      const rebuild = rebuilds.get(name);
      if (rebuild === undefined) throw new Refusal(404, `${name} has no versions managed here`);
      const action = versions[3];
      if (action === undefined) {
        await refuseVersionConflict(store.startRebuild(name, rebuild.version, rebuildOptions(rebuild)));
        await run(name, projection.rebuild, `version ${rebuild.version} was started`);
        return answer(asJson, base, { rebuilding: name, version: rebuild.version }, 202, `started rebuilding ${name} as version ${rebuild.version}`);
      }
      const version = positionParameter(segment(versions[2] ?? ""), "version");
      if (version === 0) throw new Refusal(400, "version must be a positive integer");
      if (action === "switch") await refuseVersionConflict(store.switchVersion(name, version));
      else await refuseVersionConflict(store.dropVersion(name, version));
      return answer(asJson, base, { [action === "switch" ? "switched" : "dropped"]: version, name }, 200, action === "switch" ? `switched ${name} to version ${version}` : `dropped version ${version} of ${name}`);
    }
    const replay = /^\/projections\/([^/]+)\/parked\/([^/]+)\/replay$/.exec(path);
    if (replay !== null) {
      allow("POST");
      const name = segment(replay[1] ?? "");
      const position = positionParameter(segment(replay[2] ?? ""), "position");
      const projection = projectionOf(name);
      const { replay: replayHook } = projection;
      if (replayHook === undefined) throw new Refusal(404, `${name} cannot replay here`);
      // Whether it is parked first: a position that is not must not be read and projected at all.
      const isParked = (await store.db.prepare(IS_PARKED_SQL).bind(name, position).first()) !== null;
      if (!isParked) throw new Refusal(404, `the event at position ${position} of ${name} is not parked`);
      const replayed: unknown = await callHook("replay", name, () => replayHook.call(projection, position), {
        // The projection rejects it again, or its version may not replay: it stays parked.
        refuse: (error) => (error instanceof ProjectionError || error instanceof ProjectionVersionError ? new Refusal(409, `replaying ${position} failed: ${error.message}`, {}, { cause: error }) : undefined),
      });
      if (typeof replayed !== "boolean") throw new HookFailure("replay", name, `${hookLabel("replay", name)} must answer true (replayed) or false (not parked), got ${typeName(replayed)}`);
      if (!replayed) throw new Refusal(404, `the event at position ${position} of ${name} is not parked`);
      return answer(asJson, `${base}/projections/${encodeURIComponent(name)}/parked`, { replayed: position, name }, 200, `replayed ${position}`);
    }
    throw new Refusal(404, "no such admin route");
  };

  return async (request) => {
    const url = new URL(request.url);
    if (url.pathname !== base && !url.pathname.startsWith(`${base}/`)) return undefined;
    const path = url.pathname.slice(base.length);
    const wantsJson = path.startsWith("/api/") || (request.headers.get("accept") ?? "").toLowerCase().includes("application/json") || request.headers.has("authorization");
    try {
      return await route(request, url, path, wantsJson);
    } catch (error) {
      // Whatever the store or D1 answered to the handler's own calls (a D1 failure, a `newest` query returning junk) is a 503 page;
      // a hook's failure is a HookFailure (500) already, so the store is never blamed for the caller's code.
      const refusal =
        error instanceof Refusal
          ? error
          : error instanceof CheckpointStoreError || error instanceof CheckpointTypeError || error instanceof CheckpointRangeError || isD1Error(error)
            ? new Refusal(503, `the store failed: ${messageOf(error)}`)
            : undefined;
      if (refusal === undefined) throw error;
      // A hook's failure is a bug in the caller's code: logged with its error (and that error's cause), for the stack.
      if (refusal instanceof HookFailure) console.error(refusal.message, refusal.cause);
      if (wantsJson || request.method === "HEAD") return json({ error: refusal.message, ...refusal.fields }, refusal.status, refusal.headers);
      const heading =
        refusal instanceof HookFailure ? "A hook failed" : refusal.status === 401 ? "Not signed in" : refusal.status === 403 ? "Forbidden" : refusal.status === 404 ? "Not found" : "Request refused";
      return html(renderMessage(context, heading, refusal.message), refusal.status, refusal.headers);
    }
  };
}

/** A version call the version records refused is a 409 with its reason. */
async function refuseVersionConflict(call: Promise<void>): Promise<void> {
  try {
    await call;
  } catch (error) {
    if (error instanceof ProjectionVersionError) throw new Refusal(409, error.message);
    throw error;
  }
}

/** Whether an error is one D1 raised (its messages start with `D1_`). */
function isD1Error(error: unknown): boolean {
  return error instanceof Error && /^D1_[A-Z_]+/.test(error.message);
}
