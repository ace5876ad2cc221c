/**
 * The admin page of `@synapse-es/checkpointstore-d1`, to mount in any Worker:
 * a fetch-style handler that serves, under a base path, the status of every
 * D1 projection, their parked events, the Durable Object partitions you list,
 * Reset and Replay for the projections you give, and Wake, Pause and Resume
 * for the projection daemons you list. Server-rendered and script-free under
 * a strict CSP; authorized by a bearer token (with a login form and a session
 * cookie), by Cloudflare Access, or by your own {@link AdminAuth}.
 *
 * @example
 * ```ts
 * import { adminHandler, bearerToken } from "@synapse-es/checkpointstore-d1/admin";
 *
 * const admin = adminHandler({ store: new D1CheckpointStore(env.DB), auth: bearerToken(env.ADMIN_TOKEN) });
 * return (await admin(request)) ?? new Response("not found", { status: 404 });
 * ```
 *
 * @packageDocumentation
 */
export { cloudflareAccess, type CloudflareAccessOptions } from "./admin/access.js";
export type { AdminAuth, AdminIdentity } from "./admin/auth.js";
export { bearerToken, type BearerTokenOptions } from "./admin/bearer.js";
export type { AdminDaemon } from "./admin/daemons.js";
export type { AdminRunLog } from "./admin/costs.js";
export type { RecentRuns } from "./metrics/run-log.js";
export {
  adminHandler,
  type AdminAction,
  type AdminHandler,
  type AdminHandlerOptions,
  type AdminPartition,
  type AdminProjection,
} from "./admin/handler.js";
export type { AdminRebuild } from "./admin/rebuilds.js";
export { isSameOrigin } from "./admin/session.js";
export type { EventTimeAfter } from "./admin/views.js";
