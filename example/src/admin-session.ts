// The admin page's session: a cookie that proves its holder logged in with
// ADMIN_TOKEN, without containing it, and the same-origin rule for the
// requests that cookie authenticates.
//
// The cookie is `<expiry ms>.<HMAC-SHA256(key = token, "admin-session:" + expiry)>`
// (base64url). Nothing is stored: changing ADMIN_TOKEN ends every session, and
// logging out only clears the browser's copy (a stolen cookie stays valid
// until its expiry, at most an hour).
import { HttpError } from "./http.js";

/** The session cookie's name. */
export const SESSION_COOKIE = "admin_session";
/** How long a session lasts, in seconds (the cookie's Max-Age). */
export const SESSION_SECONDS = 3600;

const encoder = new TextEncoder();

function hmacKey(token: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(token), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

function base64url(bytes: ArrayBuffer): string {
  let binary = "";
  for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** The bytes of an unpadded base64url string, or undefined when it is not one. */
function fromBase64url(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined;
  try {
    return Uint8Array.from(atob(text.replaceAll("-", "+").replaceAll("_", "/")), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

/** The cookie attributes: Secure only over https (local `wrangler dev` is plain http). */
function attributes(url: URL, maxAge: number): string {
  return `HttpOnly; SameSite=Strict; Path=/admin; Max-Age=${maxAge}${url.protocol === "https:" ? "; Secure" : ""}`;
}

/**
 * A `set-cookie` value that opens a session of {@link SESSION_SECONDS} for the
 * holder of `token`; the value is the expiry and its HMAC, never the token.
 */
export async function sessionCookie(token: string, url: URL, now = Date.now()): Promise<string> {
  const expiry = String(now + SESSION_SECONDS * 1000);
  const signature = await crypto.subtle.sign("HMAC", await hmacKey(token), encoder.encode(`admin-session:${expiry}`));
  return `${SESSION_COOKIE}=${expiry}.${base64url(signature)}; ${attributes(url, SESSION_SECONDS)}`;
}

/** A `set-cookie` value that clears the session cookie. */
export function clearedSessionCookie(url: URL): string {
  return `${SESSION_COOKIE}=; ${attributes(url, 0)}`;
}

/** The session cookie's value in a request, if it sent one. */
function cookieValue(request: Request): string | undefined {
  for (const pair of (request.headers.get("cookie") ?? "").split(";")) {
    const [name, ...value] = pair.split("=");
    if (name?.trim() === SESSION_COOKIE) return value.join("=").trim();
  }
  return undefined;
}

/**
 * Whether the request carries a session cookie that `token` signed and that
 * has not expired. The signature is checked with `crypto.subtle.verify`, in
 * constant time.
 */
export async function hasSession(request: Request, token: string, now = Date.now()): Promise<boolean> {
  const [expiry, signature, ...rest] = (cookieValue(request) ?? "").split(".");
  if (expiry === undefined || signature === undefined || rest.length > 0 || !/^[0-9]{1,16}$/.test(expiry)) return false;
  const expires = Number(expiry);
  if (expires <= now || expires > now + SESSION_SECONDS * 1000) return false;
  const bytes = fromBase64url(signature);
  if (bytes?.byteLength !== 32) return false;
  return crypto.subtle.verify("HMAC", await hmacKey(token), bytes, encoder.encode(`admin-session:${expiry}`));
}

/**
 * Refuses (403) a cookie-authenticated write from another site: the cookie is
 * sent by the browser whatever page made the request. An `Origin` header must
 * be the request URL's origin, and `Sec-Fetch-Site`, when sent, must be
 * `same-origin` or `none` (typed by the user).
 */
export function requireSameOrigin(request: Request, url: URL): void {
  const origin = request.headers.get("origin");
  const site = request.headers.get("sec-fetch-site");
  if ((origin !== null && origin !== url.origin) || (site !== null && site !== "same-origin" && site !== "none")) {
    throw new HttpError(403, "cross-origin request refused");
  }
}
