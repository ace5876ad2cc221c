// A shared secret as the admin's credential: `Authorization: Bearer <token>`
// for scripts, and for browsers a login form that opens a session cookie.
import { CheckpointRangeError, CheckpointTypeError } from "../core/errors.js";
import { checkInteger, checkOptions } from "../core/validate.js";
import type { AdminAuth, AdminIdentity } from "./auth.js";
import { clearedCookie, hasSession, sessionCookie } from "./session.js";

/** Options of {@link bearerToken}. */
export interface BearerTokenOptions {
  /** The shortest token accepted: 16 to 1,024 characters, default 32 (`openssl rand -hex 16`). */
  readonly minLength?: number | undefined;
  /** How long a browser session lasts, in seconds: 60 to 86,400, default 3,600. */
  readonly sessionSeconds?: number | undefined;
}

const encoder = new TextEncoder();

/** Whether `given` equals `token`, in time that does not depend on where they differ (`crypto.subtle.timingSafeEqual` over SHA-256 digests). */
async function tokenMatches(given: string, token: string): Promise<boolean> {
  const [a, b] = await Promise.all([crypto.subtle.digest("SHA-256", encoder.encode(given)), crypto.subtle.digest("SHA-256", encoder.encode(token))]);
  return crypto.subtle.timingSafeEqual(a, b);
}

/** The admin's base path, from the URL of its login or logout route: the session cookie's path over plain http. */
function adminPath(url: URL): string {
  return url.pathname.replace(/\/(login|logout)$/, "") || "/";
}

/**
 * Authorizes admin requests by a shared secret: the header
 * `Authorization: Bearer <token>` (scripts; not a browser credential, so no same-origin rule), or
 * the session cookie the login form opens (browsers; its writes must be
 * same-origin). The token is compared in constant time; a token shorter than
 * `minLength`, or with any whitespace, is refused when the handler is built,
 * so a blank or padded secret can never switch admin on.
 *
 * @example
 * ```ts
 * const auth = bearerToken(env.ADMIN_TOKEN); // a Worker secret: wrangler secret put ADMIN_TOKEN
 * ```
 */
export function bearerToken(token: string, options?: BearerTokenOptions): AdminAuth {
  const given = checkOptions("configure", undefined, options, "options", ["minLength", "sessionSeconds"]);
  const minLength = checkInteger("configure", undefined, given.minLength, "options.minLength", { min: 16, max: 1024, fallback: 32 });
  const seconds = checkInteger("configure", undefined, given.sessionSeconds, "options.sessionSeconds", { min: 60, max: 86_400, fallback: 3600 });
  const value: unknown = token;
  if (typeof value !== "string") throw new CheckpointTypeError("configure", undefined, "token", `must be a string, got ${value === null ? "null" : typeof value}`);
  if (/\s/.test(token)) throw new CheckpointRangeError("configure", undefined, "token", "must not contain whitespace (a padded or blank secret)");
  if (token.length < minLength || token.length > 1024) {
    throw new CheckpointRangeError("configure", undefined, "token", `must be ${minLength} to 1,024 characters, got ${token.length}`);
  }
  const bearer: AdminIdentity = { subject: "token", method: "bearer", ambient: false };
  const session: AdminIdentity = { subject: "token", method: "session", ambient: true };
  return {
    async authorize(request) {
      const header = request.headers.get("authorization");
      if (header !== null) {
        const match = /^Bearer ([^\s]+)$/i.exec(header);
        return match?.[1] !== undefined && (await tokenMatches(match[1], token)) ? bearer : undefined;
      }
      return (await hasSession(request, token, seconds)) ? session : undefined;
    },
    async login(secret, url) {
      return (await tokenMatches(secret, token)) ? sessionCookie(token, url, adminPath(url), seconds) : undefined;
    },
    logout(url) {
      return clearedCookie(url, adminPath(url));
    },
  };
}
