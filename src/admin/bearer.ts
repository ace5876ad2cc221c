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

/** The admin's base path, from the URL of its login or logout route: what the session is bound to, and its cookie's path over plain http. */
function adminPath(url: URL): string {
  return url.pathname.replace(/\/(login|logout)$/, "") || "/";
}

/** Whitespace, and control, format, surrogate, private-use and unassigned characters (Unicode category C): nothing a generated secret holds. */
const NOT_PRINTABLE = /[\p{C}\s]/u;
/** Words of a placeholder or of instructions (the example's `replace-with-the-output-of-openssl-rand-hex-16`), which no random secret holds. */
const PLACEHOLDER = /replace|openssl|change[-_]?me|placeholder|example|your[-_]/i;
/** The fewest bits per character, by the token's own character frequencies: 32 random hex digits have about 3.5. */
const MIN_BITS_PER_CHARACTER = 1.75;
/** The fewest distinct characters: a fifth of the length, up to this. */
const MIN_DISTINCT = 6;

/** The token's distinct characters (code points), and the Shannon entropy of their frequencies in bits per character. */
function spread(token: string): { readonly distinct: number; readonly bitsPerCharacter: number } {
  const counts = new Map<string, number>();
  let length = 0;
  for (const character of token) {
    counts.set(character, (counts.get(character) ?? 0) + 1);
    length += 1;
  }
  let bits = 0;
  for (const count of counts.values()) bits -= (count / length) * Math.log2(count / length);
  return { distinct: counts.size, bitsPerCharacter: bits };
}

/** Refuses a token that is plainly not a generated secret; the messages never repeat it. */
function checkToken(token: string, minLength: number): void {
  const refuse = (why: string): never => {
    throw new CheckpointRangeError("configure", undefined, "token", `${why}: use a generated secret such as the output of openssl rand -hex 16`);
  };
  if (NOT_PRINTABLE.test(token)) refuse("must not contain whitespace, control or invisible characters (a padded, blank or mangled secret)");
  if (token.length < minLength || token.length > 1024) refuse(`must be ${minLength} to 1,024 characters, got ${token.length}`);
  if (PLACEHOLDER.test(token)) refuse("looks like a placeholder or instructions, not a secret");
  const { distinct, bitsPerCharacter } = spread(token);
  if (distinct < Math.min(MIN_DISTINCT, Math.ceil(token.length / 5)) || bitsPerCharacter < MIN_BITS_PER_CHARACTER) {
    refuse(`is plainly not random (${distinct} distinct characters, ${bitsPerCharacter.toFixed(2)} bits per character)`);
  }
}

/**
 * Authorizes admin requests by a shared secret: the header
 * `Authorization: Bearer <token>` (scripts; not a browser credential, so no same-origin rule), or
 * the session cookie the login form opens (browsers; its writes must be
 * same-origin). The token is compared in constant time. When the handler is
 * built, a token is refused (`CheckpointRangeError`) that is shorter than
 * `minLength` or longer than 1,024 characters; that holds whitespace, control
 * or invisible (format, unassigned) characters; that reads like a placeholder
 * or instructions (`replace`, `openssl`, `change-me`, `placeholder`,
 * `example`, `your-`); or that is plainly not random: fewer distinct
 * characters than a fifth of its length (up to 6), or under 1.75 bits per
 * character by its own character frequencies. So a blank, padded, repeated or
 * copied-from-the-docs secret can never switch admin on.
 *
 * A session belongs to the handler whose login opened it: its MAC covers the
 * handler's base path, and its cookie is named after it (`admin_session` for
 * `/admin`, `admin_session_<base64url of the base>` for another;
 * `__Host-` first over https), so handlers that share a token neither accept
 * nor replace each other's sessions.
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
  checkToken(token, minLength);
  const bearer: AdminIdentity = { subject: "token", method: "bearer", ambient: false };
  const session: AdminIdentity = { subject: "token", method: "session", ambient: true };
  return {
    async authorize(request, basePath) {
      const header = request.headers.get("authorization");
      if (header !== null) {
        const match = /^Bearer ([^\s]+)$/i.exec(header);
        return match?.[1] !== undefined && (await tokenMatches(match[1], token)) ? bearer : undefined;
      }
      return (await hasSession(request, token, seconds, basePath)) ? session : undefined;
    },
    async login(secret, url) {
      return (await tokenMatches(secret, token)) ? sessionCookie(token, url, adminPath(url), seconds) : undefined;
    },
    logout(url) {
      return clearedCookie(url, adminPath(url));
    },
  };
}
