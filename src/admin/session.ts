// The admin session cookie and the same-origin rule for the requests it (or
// any credential the browser sends by itself) authenticates.
//
// The cookie is `<expiry ms>.<HMAC-SHA256(key, "admin-session:" + base path
// + ":" + expiry)>` (base64url): it proves its holder logged in to the handler
// at that base path, without containing the secret. Nothing is stored, so
// changing the secret ends every session, and logging out only clears the
// browser's copy. Over https it is a `__Host-` cookie (Secure, Path=/, no
// Domain: no subdomain can set or shadow it); as every `__Host-` cookie has
// Path=/, the cookie's *name* tells handlers apart: `admin_session` for the
// default base `/admin`, `admin_session_<base64url of the base>` for any
// other, so that logging in to one handler does not replace another's
// session, and the MAC keeps one handler from accepting another's.

import { decodeBase64Url, encodeBase64Url } from "./base64url.js";

/** The cookie's name for the default base path, over plain http (after `__Host-` over https). */
const COOKIE = "admin_session";
/** The handler's default base path, whose cookie is plainly {@link COOKIE}. */
const DEFAULT_BASE = "/admin";
/** A base path as the handler accepts it. */
const BASE_PATH = /^(\/[A-Za-z0-9._~-]+)+$/;
/** The most path prefixes `hasSession` tries when it is not told the base path. */
const MAX_PREFIXES = 16;

const encoder = new TextEncoder();

function hmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

function secure(url: URL): boolean {
  return url.protocol === "https:";
}

/** What the MAC covers: the base path and the expiry (neither can hold a `:`). */
function signed(base: string, expiry: string): Uint8Array {
  return encoder.encode(`admin-session:${base}:${expiry}`);
}

/** The cookie's name for the handler at `base` on `url`'s scheme: `admin_session` for `/admin`, with the base encoded for any other; `__Host-` first over https. */
export function cookieName(url: URL, base: string): string {
  const name = base === DEFAULT_BASE ? COOKIE : `${COOKIE}_${encodeBase64Url(encoder.encode(base))}`;
  return secure(url) ? `__Host-${name}` : name;
}

function attributes(url: URL, path: string, maxAge: number): string {
  // __Host- requires Secure and Path=/; over plain http the cookie is scoped to the admin path.
  return secure(url) ? `HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAge}; Secure` : `HttpOnly; SameSite=Strict; Path=${path}; Max-Age=${maxAge}`;
}

/** A `Set-Cookie` value opening a session of `seconds` with the handler at `base`, signed with `secret`; the value is the expiry and its HMAC. */
export async function sessionCookie(secret: string, url: URL, base: string, seconds: number, now = Date.now()): Promise<string> {
  const expiry = String(now + seconds * 1000);
  const signature = await crypto.subtle.sign("HMAC", await hmacKey(secret), signed(base, expiry));
  return `${cookieName(url, base)}=${expiry}.${encodeBase64Url(signature)}; ${attributes(url, base, seconds)}`;
}

/** A `Set-Cookie` value that clears the session cookie of the handler at `base`. */
export function clearedCookie(url: URL, base: string): string {
  return `${cookieName(url, base)}=; ${attributes(url, base, 0)}`;
}

function cookieValue(request: Request, name: string): string | undefined {
  for (const pair of (request.headers.get("cookie") ?? "").split(";")) {
    const [key, ...value] = pair.split("=");
    if (key?.trim() === name) return value.join("=").trim();
  }
  return undefined;
}

/** The base paths a request to `pathname` may belong to, shortest first: each of its leading segments. */
function prefixes(pathname: string): string[] {
  const found: string[] = [];
  for (let end = pathname.indexOf("/", 1); found.length < MAX_PREFIXES; end = pathname.indexOf("/", end + 1)) {
    const prefix = end === -1 ? pathname : pathname.slice(0, end);
    if (!BASE_PATH.test(prefix)) break;
    found.push(prefix);
    if (end === -1) break;
  }
  return found;
}

/**
 * Whether the request carries an unexpired session cookie of the handler at
 * `base`, signed with `secret` (checked with `crypto.subtle.verify`, in
 * constant time). Without `base` (a route of the caller's own beside the
 * handler), the session of any base path the request's path is under counts.
 */
export async function hasSession(request: Request, secret: string, seconds: number, base?: string, now = Date.now()): Promise<boolean> {
  const url = new URL(request.url);
  for (const candidate of base === undefined ? prefixes(url.pathname) : [base]) {
    const value = cookieValue(request, cookieName(url, candidate));
    if (value !== undefined && (await validSession(value, secret, seconds, candidate, now))) return true;
  }
  return false;
}

async function validSession(value: string, secret: string, seconds: number, base: string, now: number): Promise<boolean> {
  const [expiry, signature, ...rest] = value.split(".");
  if (expiry === undefined || signature === undefined || rest.length > 0 || !/^[0-9]{1,16}$/.test(expiry)) return false;
  const expires = Number(expiry);
  if (expires <= now || expires > now + seconds * 1000) return false;
  const bytes = decodeBase64Url(signature);
  if (bytes?.byteLength !== 32) return false;
  return crypto.subtle.verify("HMAC", await hmacKey(secret), bytes, signed(base, expiry));
}

/**
 * Whether a write that a browser credential authenticates provably comes from
 * `url`'s own origin: its `Origin` header is that origin; or, without one,
 * `Sec-Fetch-Site` is `same-origin`; or, without either, its `Referer` is a
 * page of that origin. A request that proves none of them is refused: a
 * browser sends at least one of them on a form post, and a client that sends
 * none should use a bearer token.
 */
export function isSameOrigin(request: Request, url: URL): boolean {
  const origin = request.headers.get("origin");
  if (origin !== null) return origin === url.origin;
  const site = request.headers.get("sec-fetch-site");
  if (site !== null) return site === "same-origin";
  const referer = request.headers.get("referer");
  if (referer === null) return false;
  try {
    return new URL(referer).origin === url.origin;
  } catch {
    return false;
  }
}
