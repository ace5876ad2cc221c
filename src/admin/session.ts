// The admin session cookie and the same-origin rule for the requests it (or
// any credential the browser sends by itself) authenticates.
//
// The cookie is `<expiry ms>.<HMAC-SHA256(key, "admin-session:" + expiry)>`
// (base64url): it proves its holder logged in without containing the secret.
// Nothing is stored, so changing the secret ends every session, and logging
// out only clears the browser's copy. Over https it is a `__Host-` cookie
// (Secure, Path=/, no Domain: no subdomain can set or shadow it).

import { decodeBase64Url, encodeBase64Url } from "./base64url.js";

/** The cookie's name over plain http (local development), and after `__Host-` over https. */
const COOKIE = "admin_session";

const encoder = new TextEncoder();

function hmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

function secure(url: URL): boolean {
  return url.protocol === "https:";
}

/** The cookie's name for `url`: `__Host-admin_session` over https. */
export function cookieName(url: URL): string {
  return secure(url) ? `__Host-${COOKIE}` : COOKIE;
}

function attributes(url: URL, path: string, maxAge: number): string {
  // __Host- requires Secure and Path=/; over plain http the cookie is scoped to the admin path.
  return secure(url) ? `HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAge}; Secure` : `HttpOnly; SameSite=Strict; Path=${path}; Max-Age=${maxAge}`;
}

/** A `Set-Cookie` value opening a session of `seconds` signed with `secret`; the value is the expiry and its HMAC. */
export async function sessionCookie(secret: string, url: URL, path: string, seconds: number, now = Date.now()): Promise<string> {
  const expiry = String(now + seconds * 1000);
  const signature = await crypto.subtle.sign("HMAC", await hmacKey(secret), encoder.encode(`admin-session:${expiry}`));
  return `${cookieName(url)}=${expiry}.${encodeBase64Url(signature)}; ${attributes(url, path, seconds)}`;
}

/** A `Set-Cookie` value that clears the session cookie. */
export function clearedCookie(url: URL, path: string): string {
  return `${cookieName(url)}=; ${attributes(url, path, 0)}`;
}

function cookieValue(request: Request, name: string): string | undefined {
  for (const pair of (request.headers.get("cookie") ?? "").split(";")) {
    const [key, ...value] = pair.split("=");
    if (key?.trim() === name) return value.join("=").trim();
  }
  return undefined;
}

/** Whether the request carries an unexpired session cookie signed with `secret` (checked with `crypto.subtle.verify`, in constant time). */
export async function hasSession(request: Request, secret: string, seconds: number, now = Date.now()): Promise<boolean> {
  const [expiry, signature, ...rest] = (cookieValue(request, cookieName(new URL(request.url))) ?? "").split(".");
  if (expiry === undefined || signature === undefined || rest.length > 0 || !/^[0-9]{1,16}$/.test(expiry)) return false;
  const expires = Number(expiry);
  if (expires <= now || expires > now + seconds * 1000) return false;
  const bytes = decodeBase64Url(signature);
  if (bytes?.byteLength !== 32) return false;
  return crypto.subtle.verify("HMAC", await hmacKey(secret), bytes, encoder.encode(`admin-session:${expiry}`));
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
