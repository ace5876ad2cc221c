import { describe, expect, it } from "vitest";
import { cloudflareAccess } from "../src/admin/access.js";

// While the team's certs endpoint fails, cloudflareAccess backs off: a failed
// key fetch is remembered, and no token fetches again before a growing,
// capped interval has passed. Fetches are counted through the `fetch` option
// (a real Response each time); the clock is injected, so no test waits.

const TEAM = "https://acme.cloudflareaccess.com";
const AUD = "32eafc7626e974616deaf0dc3ce63d7bcbed58a2731e84d06bc3cdf1b53c4228";
const NOW_MS = 1_700_000_000_000;
const NOW = NOW_MS / 1000;
const RSA = { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" };

const pair = (await crypto.subtle.generateKey(RSA, true, ["sign", "verify"])) as CryptoKeyPair;
const exported = (await crypto.subtle.exportKey("jwk", pair.publicKey)) as JsonWebKey;
const JWK = { kty: "RSA", n: exported.n, e: exported.e, alg: "RS256", use: "sig", kid: "team-key-1" };

function base64Url(data: string | Uint8Array): string {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** A token with plausible claims, signed by the team's key; `kid` names the key (made-up ones are not in any set). */
async function token(kid = JWK.kid, email = "ada@acme.com"): Promise<string> {
  const claims = { aud: [AUD], email, exp: NOW + 3600, iat: NOW, nbf: NOW, iss: TEAM };
  const signing = `${base64Url(JSON.stringify({ alg: "RS256", kid, typ: "JWT" }))}.${base64Url(JSON.stringify(claims))}`;
  const signature = await crypto.subtle.sign("RSASSA-PKCS1-v1_5", pair.privateKey, new TextEncoder().encode(signing));
  return `${signing}.${base64Url(new Uint8Array(signature))}`;
}

function request(assertion: string): Request {
  return new Request("https://admin.acme.com/admin", { headers: { "Cf-Access-Jwt-Assertion": assertion } });
}

/** A certs endpoint that answers `status` (500 until told otherwise) with the team's keys, counting its fetches; and a clock. */
function endpoint(): { readonly auth: ReturnType<typeof cloudflareAccess>; readonly state: { status: number; fetches: number; ms: number } } {
  const state = { status: 500, fetches: 0, ms: NOW_MS };
  const fetcher = (): Promise<Response> => {
    state.fetches += 1;
    return Promise.resolve(new Response(JSON.stringify({ keys: [JWK] }), { status: state.status }));
  };
  return { auth: cloudflareAccess({ teamDomain: TEAM, audience: AUD, fetch: fetcher, now: () => state.ms }), state };
}

const USER = { subject: "ada@acme.com", method: "access", ambient: true };

describe("cloudflareAccess: while the certs endpoint fails", () => {
  it("ten tokens in a row cost one fetch, not ten", async () => {
    const { auth, state } = endpoint();
    for (let i = 0; i < 10; i++) await expect(auth.authorize(request(await token(JWK.kid, `user${i}@acme.com`)))).resolves.toBeUndefined();
    expect(state.fetches).toBe(1);
  });

  it("fetches again only after an interval that doubles with each failure, up to 30 seconds", async () => {
    const { auth, state } = endpoint();
    const assertion = await token();
    const fetchesAt = async (offsetMs: number): Promise<number> => {
      state.ms = NOW_MS + offsetMs;
      await auth.authorize(request(assertion));
      return state.fetches;
    };
    expect(await fetchesAt(0)).toBe(1); // fails: wait 1 s
    expect(await fetchesAt(999)).toBe(1);
    expect(await fetchesAt(1000)).toBe(2); // fails again: wait 2 s
    expect(await fetchesAt(2999)).toBe(2);
    expect(await fetchesAt(3000)).toBe(3); // wait 4 s
    expect(await fetchesAt(7000)).toBe(4); // wait 8 s
    expect(await fetchesAt(15_000)).toBe(5); // wait 16 s
    expect(await fetchesAt(31_000)).toBe(6); // wait 30 s, the cap
    expect(await fetchesAt(60_999)).toBe(6);
    expect(await fetchesAt(61_000)).toBe(7);
    expect(await fetchesAt(90_999)).toBe(7); // still 30 s
    state.status = 200;
    await expect(fetchesAt(91_000)).resolves.toBe(8);
    state.ms = NOW_MS + 91_000;
    await expect(auth.authorize(request(assertion))).resolves.toEqual(USER); // cached now
    expect(state.fetches).toBe(8);
  });

  it("a success ends the backoff: the next failure waits 1 second again", async () => {
    const { auth, state } = endpoint();
    const assertion = await token();
    await auth.authorize(request(assertion)); // fails
    state.ms += 1000;
    await auth.authorize(request(assertion)); // fails: wait 2 s
    state.ms += 2000;
    state.status = 200;
    await expect(auth.authorize(request(assertion))).resolves.toEqual(USER);
    expect(state.fetches).toBe(3);
    // five minutes on, the cached set has expired and the endpoint fails again
    state.status = 500;
    state.ms += 300_000;
    await expect(auth.authorize(request(assertion))).resolves.toBeUndefined();
    expect(state.fetches).toBe(4);
    state.ms += 999;
    await auth.authorize(request(assertion));
    expect(state.fetches).toBe(4);
    state.ms += 1;
    await auth.authorize(request(assertion));
    expect(state.fetches).toBe(5);
  });

  it("a made-up kid does not fetch during the backoff either, nor when the cached set is older than the cooldown and the refetch failed", async () => {
    const { auth, state } = endpoint();
    state.status = 200;
    await expect(auth.authorize(request(await token()))).resolves.toEqual(USER);
    expect(state.fetches).toBe(1);
    state.status = 500;
    state.ms += 30_000; // the set may be refetched for an unknown kid now
    for (let i = 0; i < 10; i++) await expect(auth.authorize(request(await token(`made-up-${i}`)))).resolves.toBeUndefined();
    expect(state.fetches).toBe(2);
    // the cached key still verifies its tokens meanwhile
    await expect(auth.authorize(request(await token()))).resolves.toEqual(USER);
    expect(state.fetches).toBe(2);
  });

  it("a failure is remembered per key source: another fetch function is not held back", async () => {
    const first = endpoint();
    const second = endpoint();
    await first.auth.authorize(request(await token()));
    second.state.status = 200;
    await expect(second.auth.authorize(request(await token()))).resolves.toEqual(USER);
    expect([first.state.fetches, second.state.fetches]).toEqual([1, 1]);
  });

  it("a key source that throws is backed off the same way", async () => {
    let calls = 0;
    const clock = { ms: NOW_MS };
    const auth = cloudflareAccess({
      teamDomain: TEAM,
      audience: AUD,
      now: () => clock.ms,
      keys: () => {
        calls += 1;
        return calls <= 1 ? Promise.reject(new Error("certs unreachable")) : Promise.resolve([JWK as JsonWebKey]);
      },
    });
    const assertion = await token();
    await expect(auth.authorize(request(assertion))).resolves.toBeUndefined();
    await expect(auth.authorize(request(assertion))).resolves.toBeUndefined();
    expect(calls).toBe(1);
    clock.ms += 1000;
    await expect(auth.authorize(request(assertion))).resolves.toEqual(USER);
    expect(calls).toBe(2);
  });
});
