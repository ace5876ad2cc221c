// Cloudflare Access as the admin handler's authorization: every request that
// passed Access carries a JWT in `Cf-Access-Jwt-Assertion`, signed (RS256)
// with the team's key pair. It is verified here with WebCrypto alone, against
// the team's public keys (`<team domain>/cdn-cgi/access/certs`), following
// https://developers.cloudflare.com/cloudflare-one/access-controls/applications/http-apps/authorization-cookie/validating-json/
//
// Key cache: the *imported* CryptoKeys of a key set, with the time they were
// fetched, in a module-level map per key source and team domain. A Worker
// usually builds its AdminAuth per request (the AUD tag comes from `env`), so
// a cache inside the returned object would hold nothing; the module-level one
// lives as long as the isolate. It holds only settled values: a CryptoKey is
// not an I/O object and may be used by any request of the isolate, whereas a
// cached *promise* of a fetch belongs to the request that started it (another
// request awaiting it can hang or fail when that one ends). Two requests that
// miss the cache together both fetch; that is the price of sharing no promise.
// A failed fetch is remembered beside the set (its time and the failures in a
// row), and the source is not asked again before a backoff of 1 s, doubling
// up to 30 s, has passed: while the endpoint is down, tokens do not each fetch.
import { CheckpointRangeError, CheckpointTypeError } from "../core/errors.js";
import { checkFunction, checkInteger, checkOptions, typeName } from "../core/validate.js";
import { decodeBase64Url } from "./base64url.js";
import type { AdminAuth, AdminIdentity } from "./auth.js";

/** Options of {@link cloudflareAccess}. */
export interface CloudflareAccessOptions {
  /**
   * The Zero Trust team domain, `"https://<team>.cloudflareaccess.com"` (or
   * without the scheme). Tokens must be issued by it (`iss`), and its public
   * keys are fetched from `<teamDomain>/cdn-cgi/access/certs`.
   */
  readonly teamDomain: string;
  /**
   * The Access application's Application Audience (AUD) tag, or several
   * (several applications in front of the same Worker): a token's `aud` must
   * name one of them.
   */
  readonly audience: string | readonly string[];
  /**
   * Where the public keys come from instead of the team's certs endpoint:
   * answers JWKs (RS256 keys with a `kid`). For tests, or your own key
   * distribution. Give at most one of `keys` and `fetch`.
   */
  readonly keys?: (() => Promise<readonly JsonWebKey[]>) | undefined;
  /** The `fetch` used to get the certs (default: the global `fetch`). */
  readonly fetch?: typeof fetch | undefined;
  /** The clock, in milliseconds since the epoch (default: `Date.now`). For tests. */
  readonly now?: (() => number) | undefined;
  /** How far a token's `exp`, `nbf` and `iat` may be off, in seconds: 0 to 600, default 60. */
  readonly clockSkewSeconds?: number | undefined;
}

/** The request header Access puts its application token in. */
const ASSERTION_HEADER = "Cf-Access-Jwt-Assertion";
/** How long a fetched key set is used before it is fetched again. */
const KEYS_TTL_MS = 5 * 60_000;
/**
 * A token whose `kid` is not in the cached set has the set fetched again
 * (Access rotated its key), but not when that set is younger than this: made-up
 * key ids must not turn into one certs fetch per request.
 */
const REFETCH_COOLDOWN_MS = 30_000;
/**
 * After the key source fails (an error, a non-2xx answer, a document without
 * keys), it is not asked again for this long, doubling with each failure in
 * a row up to {@link MAX_FAILURE_BACKOFF_MS}: while the certs endpoint is
 * down, tokens must not turn into one fetch each.
 */
const FAILURE_BACKOFF_MS = 1000;
const MAX_FAILURE_BACKOFF_MS = 30_000;
/** The longest assertion looked at: Access tokens are a few KB, even with custom claims. */
const MAX_TOKEN_LENGTH = 64 * 1024;
/** How long the certs fetch may take. */
const FETCH_TIMEOUT_MS = 10_000;
const MAX_CLOCK_SKEW_SECONDS = 600;
const KNOWN_OPTIONS = ["teamDomain", "audience", "keys", "fetch", "now", "clockSkewSeconds"] as const;
const RS256 = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };

/** A team's usable keys by `kid`, and when they were fetched (by the configured clock). */
interface KeySet {
  readonly keys: ReadonlyMap<string, CryptoKey>;
  readonly fetchedAt: number;
}

/** What is known of one key source for one issuer: its last key set, and its failures in a row since (with the time of the last). */
interface SourceState {
  readonly set: KeySet | undefined;
  readonly failures: number;
  readonly failedAt: number;
}

/** Stands for the global `fetch` as a key source. */
const GLOBAL_FETCH: object = {};
/** Per key source (the `keys` or `fetch` option, or the global fetch), then per issuer: settled values only. */
const keySources = new WeakMap<object, Map<string, SourceState>>();

interface Config {
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly source: object;
  readonly load: () => Promise<readonly unknown[] | undefined>;
  readonly now: () => number;
  readonly skewSeconds: number;
}

/**
 * Authorizes admin requests with Cloudflare Access: a request is who the
 * `Cf-Access-Jwt-Assertion` header says, once the token is verified. It must
 * be an RS256 JWT (any other `alg`, `none` included, is refused) signed by the
 * team key its `kid` names, issued by `teamDomain` (`iss`), for one of
 * `audience` (`aud`), and within `exp`, `nbf` and `iat` give or take the
 * clock skew. Any failure, a missing header or an unreachable certs endpoint
 * included, answers `undefined`; `authorize` never throws.
 *
 * The identity's `subject` is the user's `email`, or for a service token the
 * `common_name` claim (its Client ID), else `sub`, else `"service token"`;
 * `method` is `"access"` and `ambient` is `true` (the browser sends Access's
 * cookie by itself, so writes must be same-origin).
 *
 * The team's public keys are cached for 5 minutes per isolate, as imported
 * keys; a token naming a key not in the cache has the keys fetched again, at
 * most once per 30 seconds, so that a key rotation is picked up at once. While
 * the key source fails, it is asked again only after 1 second, then 2, 4 and
 * so on up to 30 seconds (tokens meanwhile answer `undefined`), until it
 * answers keys again.
 *
 * Check all options before any request: a wrong one is a
 * `CheckpointTypeError` or `CheckpointRangeError` (operation `"configure"`).
 *
 * @example
 * ```ts
 * import { cloudflareAccess } from "@synapse-es/checkpointstore-d1/admin";
 *
 * const auth = cloudflareAccess({ teamDomain: "https://acme.cloudflareaccess.com", audience: env.ACCESS_AUD });
 * const identity = await auth.authorize(request); // { subject: "ada@acme.com", method: "access", ambient: true }
 * if (identity === undefined) return new Response("Forbidden", { status: 403 });
 * ```
 */
export function cloudflareAccess(options: CloudflareAccessOptions): AdminAuth {
  const config = parseOptions(options);
  return {
    async authorize(request: Request): Promise<AdminIdentity | undefined> {
      try {
        const token = request.headers.get(ASSERTION_HEADER);
        if (token === null) return undefined;
        return await verify(config, token);
      } catch {
        // A bad token answers undefined by design; this only catches what a
        // user-supplied callback (keys, fetch, now) might throw.
        return undefined;
      }
    },
  };
}

function parseOptions(options: CloudflareAccessOptions): Config {
  const given: unknown = options;
  if (given === undefined) throw new CheckpointTypeError("configure", undefined, "options", "must be an object, got undefined");
  const raw = checkOptions("configure", undefined, options, "options", KNOWN_OPTIONS);
  const issuer = parseTeamDomain(raw.teamDomain);
  const audiences = parseAudience(raw.audience);
  const keys = checkFunction("configure", undefined, raw.keys, "options.keys");
  const fetcher = checkFunction("configure", undefined, raw.fetch, "options.fetch");
  if (keys !== undefined && fetcher !== undefined) {
    throw new CheckpointTypeError("configure", undefined, "options.fetch", "give at most one of keys and fetch (keys replaces the certs fetch)");
  }
  const now = checkFunction("configure", undefined, raw.now, "options.now") ?? Date.now;
  const skewSeconds = checkInteger("configure", undefined, raw.clockSkewSeconds, "options.clockSkewSeconds", {
    min: 0,
    max: MAX_CLOCK_SKEW_SECONDS,
    fallback: 60,
  });
  const load =
    keys !== undefined
      ? async (): Promise<readonly unknown[] | undefined> => {
          const answer: unknown = await keys();
          return Array.isArray(answer) ? (answer as unknown[]) : undefined;
        }
      : () => fetchCerts(fetcher ?? ((input, init) => fetch(input, init)), `${issuer}/cdn-cgi/access/certs`);
  return { issuer, audiences, source: keys ?? fetcher ?? GLOBAL_FETCH, load, now, skewSeconds };
}

/** `teamDomain` as the issuer Access writes into `iss`: `https://<host>`, nothing after it. */
function parseTeamDomain(value: unknown): string {
  const argument = "options.teamDomain";
  if (typeof value !== "string") {
    throw new CheckpointTypeError("configure", undefined, argument, `must be a string, got ${typeName(value)}`);
  }
  const example = "such as \"https://acme.cloudflareaccess.com\"";
  const text = /^[a-z][a-z\d+.-]*:/i.test(value) ? value : `https://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CheckpointRangeError("configure", undefined, argument, `must be the team domain, ${example}, got ${JSON.stringify(value)}`);
  }
  if (url.protocol !== "https:") {
    throw new CheckpointRangeError("configure", undefined, argument, `must be an https URL, ${example}, got ${JSON.stringify(value)}`);
  }
  const extra = url.username !== "" || url.password !== "" || url.port !== "" || url.pathname !== "/" || url.search !== "" || url.hash !== "";
  if (extra || /[?#]/.test(value) || !url.hostname.includes(".")) {
    throw new CheckpointRangeError("configure", undefined, argument, `must be the team domain alone, ${example}, got ${JSON.stringify(value)}`);
  }
  return url.origin;
}

/** `audience` as a non-empty list of non-empty AUD tags (a copy). */
function parseAudience(value: unknown): readonly string[] {
  const argument = "options.audience";
  if (typeof value === "string") {
    if (value === "") throw new CheckpointRangeError("configure", undefined, argument, "must not be empty");
    return [value];
  }
  if (!Array.isArray(value)) {
    throw new CheckpointTypeError("configure", undefined, argument, `must be a string or an array of strings, got ${typeName(value)}`);
  }
  const items = value as unknown[];
  if (items.length === 0) throw new CheckpointRangeError("configure", undefined, argument, "must name at least one AUD tag");
  const tags: string[] = [];
  for (let index = 0; index < items.length; index++) {
    const item = items[index];
    if (typeof item !== "string") {
      throw new CheckpointTypeError("configure", undefined, `${argument}[${index}]`, `must be a string, got ${index in items ? typeName(item) : "a hole (sparse array)"}`);
    }
    if (item === "") throw new CheckpointRangeError("configure", undefined, `${argument}[${index}]`, "must not be empty");
    tags.push(item);
  }
  return tags;
}

/** The `keys` of the team's certs document, or `undefined` when it cannot be had. */
async function fetchCerts(fetcher: typeof fetch, url: string): Promise<readonly unknown[] | undefined> {
  const response = await fetcher(url, { headers: { accept: "application/json" }, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  if (!response.ok) {
    await response.body?.cancel();
    return undefined;
  }
  const document: unknown = await response.json();
  if (typeof document !== "object" || document === null) return undefined;
  const keys = (document as { keys?: unknown }).keys;
  return Array.isArray(keys) ? (keys as unknown[]) : undefined;
}

/** The identity a token proves, or `undefined`. */
async function verify(config: Config, token: string): Promise<AdminIdentity | undefined> {
  if (token.length > MAX_TOKEN_LENGTH) return undefined;
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  const [encodedHeader = "", encodedPayload = "", encodedSignature = ""] = parts;
  const header = decodeJson(encodedHeader);
  const payload = decodeJson(encodedPayload);
  const signature = decodeBase64Url(encodedSignature);
  if (header === undefined || payload === undefined || signature === undefined || signature.length === 0) return undefined;
  // RS256 only: `none`, HS256 (the public key used as an HMAC secret) and
  // every other algorithm are refused before any key is looked at.
  if (header.alg !== "RS256" || typeof header.kid !== "string" || header.kid === "") return undefined;
  if (header.crit !== undefined) return undefined; // no extension is understood (RFC 7515 §4.1.11)
  const now = config.now();
  if (typeof now !== "number" || !Number.isFinite(now)) return undefined;
  if (!claimsHold(config, payload, now / 1000)) return undefined;
  const key = await keyFor(config, header.kid, now);
  if (key === undefined) return undefined;
  const signed = new TextEncoder().encode(`${encodedHeader}.${encodedPayload}`);
  if (!(await crypto.subtle.verify(RS256, key, signature, signed))) return undefined;
  return { subject: subjectOf(payload), method: "access", ambient: true };
}

/** Whether `iss`, `aud`, `exp`, `nbf` and `iat` allow the token now (in seconds). */
function claimsHold(config: Config, payload: Record<string, unknown>, now: number): boolean {
  if (payload.iss !== config.issuer) return false;
  const aud = payload.aud;
  const audiences = typeof aud === "string" ? [aud] : Array.isArray(aud) ? (aud as unknown[]) : [];
  if (!audiences.some((tag) => typeof tag === "string" && config.audiences.includes(tag))) return false;
  const skew = config.skewSeconds;
  const { exp, nbf, iat } = payload;
  if (typeof exp !== "number" || !Number.isFinite(exp) || now >= exp + skew) return false;
  if (nbf !== undefined && (typeof nbf !== "number" || !Number.isFinite(nbf) || now + skew < nbf)) return false;
  if (iat !== undefined && (typeof iat !== "number" || !Number.isFinite(iat) || now + skew < iat)) return false;
  return true;
}

/** The user's e-mail; for a service token its Client ID (`common_name`; its `sub` is empty). */
function subjectOf(payload: Record<string, unknown>): string {
  for (const claim of [payload.email, payload.common_name, payload.sub]) {
    if (typeof claim === "string" && claim !== "") return claim;
  }
  return "service token";
}

/** The team key `kid` names, from the cache or fetched; `undefined` when there is none. */
async function keyFor(config: Config, kid: string, now: number): Promise<CryptoKey | undefined> {
  let sources = keySources.get(config.source);
  if (sources === undefined) {
    sources = new Map();
    keySources.set(config.source, sources);
  }
  const state = sources.get(config.issuer) ?? { set: undefined, failures: 0, failedAt: 0 };
  const cached = state.set;
  const age = cached === undefined ? Number.NaN : now - cached.fetchedAt;
  if (cached !== undefined && age >= 0 && age < KEYS_TTL_MS) {
    const key = cached.keys.get(kid);
    if (key !== undefined) return key;
    if (age < REFETCH_COOLDOWN_MS) return undefined; // fetched moments ago: the kid is made up
  }
  const sinceFailure = now - state.failedAt;
  if (state.failures > 0 && sinceFailure >= 0 && sinceFailure < backoffMs(state.failures)) return undefined; // the source failed moments ago
  const keys = await loadKeys(config);
  if (keys === undefined) {
    // Remembered, so that the tokens arriving meanwhile do not each fetch again; the key set (if any) is kept as it was.
    sources.set(config.issuer, { set: cached, failures: state.failures + 1, failedAt: now });
    return undefined;
  }
  sources.set(config.issuer, { set: { keys, fetchedAt: now }, failures: 0, failedAt: 0 });
  return keys.get(kid);
}

/** How long after the `failures`-th failure in a row the key source is not asked again: 1 s, doubling, at most 30 s. */
function backoffMs(failures: number): number {
  return Math.min(FAILURE_BACKOFF_MS * 2 ** Math.min(failures - 1, 30), MAX_FAILURE_BACKOFF_MS);
}

/** The key source's usable keys, imported, by `kid`; `undefined` when the source fails. */
async function loadKeys(config: Config): Promise<ReadonlyMap<string, CryptoKey> | undefined> {
  let jwks: readonly unknown[] | undefined;
  try {
    jwks = await config.load();
  } catch {
    return undefined;
  }
  if (jwks === undefined) return undefined;
  const keys = new Map<string, CryptoKey>();
  for (const jwk of jwks) {
    if (typeof jwk !== "object" || jwk === null) continue;
    const { kid, kty, n, e, alg, use } = jwk as Record<string, unknown>;
    if (typeof kid !== "string" || kid === "" || keys.has(kid)) continue;
    if (kty !== "RSA" || typeof n !== "string" || typeof e !== "string") continue;
    if ((alg !== undefined && alg !== "RS256") || (use !== undefined && use !== "sig")) continue;
    try {
      const key = await crypto.subtle.importKey("jwk", { kty, n, e, alg: "RS256" }, RS256, false, ["verify"]);
      const { modulusLength } = key.algorithm as CryptoKeyRsaKeyAlgorithm;
      if (modulusLength >= 2048) keys.set(kid, key);
    } catch {
      // not a usable RSA public key: skipped, the others still count
    }
  }
  return keys;
}

/** A base64url segment's JSON object, or `undefined`. */
function decodeJson(segment: string): Record<string, unknown> | undefined {
  const bytes = decodeBase64Url(segment);
  if (bytes === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes));
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

