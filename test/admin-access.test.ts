import { describe, expect, it } from "vitest";
import { cloudflareAccess, type CloudflareAccessOptions } from "../src/admin/access.js";
import { CheckpointRangeError, CheckpointTypeError } from "../src/core/errors.js";

// Access tokens are made here: an RSA key pair stands for the team's signing
// key (its public JWK, with a kid, is what the certs endpoint would serve), a
// second pair for a stranger's. The clock is injected: no test waits.

const TEAM = "https://acme.cloudflareaccess.com";
const AUD = "32eafc7626e974616deaf0dc3ce63d7bcbed58a2731e84d06bc3cdf1b53c4228";
const NOW_MS = 1_700_000_000_000;
const NOW = NOW_MS / 1000;
const RSA = { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" };

interface Signer {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly jwk: JsonWebKey;
}

async function signer(kid: string): Promise<Signer> {
  const pair = (await crypto.subtle.generateKey(RSA, true, ["sign", "verify"])) as CryptoKeyPair;
  const exported = (await crypto.subtle.exportKey("jwk", pair.publicKey)) as JsonWebKey;
  return { kid, privateKey: pair.privateKey, jwk: { kty: "RSA", n: exported.n, e: exported.e, alg: "RS256", use: "sig", kid } as JsonWebKey };
}

const team = await signer("team-key-1");
const rotated = await signer("team-key-2");
const stranger = await signer("stranger-key");

function base64Url(data: string | Uint8Array): string {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    aud: [AUD],
    email: "ada@acme.com",
    exp: NOW + 60,
    iat: NOW,
    nbf: NOW,
    iss: TEAM,
    type: "app",
    identity_nonce: "6ei69kawdKzMIAPF",
    sub: "7335d417-61da-459d-899c-0a01c76a2f94",
    country: "US",
    ...overrides,
  };
}

/** An RS256 JWT signed by `by`, its header naming `by.kid` unless `header` says otherwise. */
async function jwt(payload: Record<string, unknown> = claims(), by: Signer = team, header: Record<string, unknown> = {}): Promise<string> {
  const signing = `${base64Url(JSON.stringify({ alg: "RS256", kid: by.kid, typ: "JWT", ...header }))}.${base64Url(JSON.stringify(payload))}`;
  const signature = await crypto.subtle.sign("RSASSA-PKCS1-v1_5", by.privateKey, new TextEncoder().encode(signing));
  return `${signing}.${base64Url(new Uint8Array(signature))}`;
}

function request(token?: string): Request {
  return new Request("https://admin.acme.com/admin", token === undefined ? {} : { headers: { "Cf-Access-Jwt-Assertion": token } });
}

/** An auth over `answers` (one per keys() call, the last repeated), counting the calls; the clock is `clock.ms`. */
function access(options: Partial<CloudflareAccessOptions> = {}, answers: readonly (readonly JsonWebKey[])[] = [[team.jwk]]) {
  const clock = { ms: NOW_MS };
  const counter = { keys: 0 };
  const auth = cloudflareAccess({
    teamDomain: TEAM,
    audience: AUD,
    keys: () => {
      const answer = answers[Math.min(counter.keys, answers.length - 1)] ?? [];
      counter.keys += 1;
      return Promise.resolve(answer);
    },
    now: () => clock.ms,
    ...options,
  });
  return { auth, clock, counter };
}

function thrown(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  return undefined;
}

const USER = { subject: "ada@acme.com", method: "access", ambient: true };

describe("cloudflareAccess: valid tokens", () => {
  it("accepts a user's token and answers the e-mail as an ambient Access identity", async () => {
    const { auth, counter } = access();
    await expect(auth.authorize(request(await jwt()))).resolves.toEqual(USER);
    // the header name is matched without regard to case, as HTTP wants
    const lower = new Request("https://admin.acme.com/", { headers: { "cf-access-jwt-assertion": await jwt() } });
    await expect(auth.authorize(lower)).resolves.toEqual(USER);
    expect(counter.keys).toBe(1); // the second request used the cached key
    expect("login" in auth || "logout" in auth).toBe(false); // no login form: Access logs users in
  });

  it("accepts a service token (empty sub) as its Client ID, from common_name", async () => {
    const { auth } = access();
    const service = { type: "app", aud: [AUD], exp: NOW + 60, iss: TEAM, common_name: "e367826f93b8d71185e03fe518aff3b4.access", iat: NOW, sub: "" };
    await expect(auth.authorize(request(await jwt(service)))).resolves.toEqual({
      subject: "e367826f93b8d71185e03fe518aff3b4.access",
      method: "access",
      ambient: true,
    });
    const bare = { aud: AUD, exp: NOW + 60, iss: TEAM, sub: "" };
    await expect(auth.authorize(request(await jwt(bare)))).resolves.toMatchObject({ subject: "service token" });
    const subOnly = { aud: AUD, exp: NOW + 60, iss: TEAM, sub: "user-7" };
    await expect(auth.authorize(request(await jwt(subOnly)))).resolves.toMatchObject({ subject: "user-7" });
  });

  it("takes aud as a string or an array, and any of several configured audiences", async () => {
    const { auth } = access({ audience: ["other-app", AUD] });
    await expect(auth.authorize(request(await jwt(claims({ aud: AUD }))))).resolves.toEqual(USER);
    await expect(auth.authorize(request(await jwt(claims({ aud: ["third", "other-app"] }))))).resolves.toEqual(USER);
    await expect(auth.authorize(request(await jwt(claims({ aud: ["third"] }))))).resolves.toBeUndefined();
  });

  it("accepts a team domain given without the scheme or with a trailing slash", async () => {
    for (const teamDomain of ["acme.cloudflareaccess.com", "https://acme.cloudflareaccess.com/", "https://ACME.cloudflareaccess.com"]) {
      const { auth } = access({ teamDomain });
      await expect(auth.authorize(request(await jwt()))).resolves.toEqual(USER);
    }
  });
});

describe("cloudflareAccess: refused tokens answer undefined", () => {
  it("no header, or an empty one, is no identity, and no key is fetched for it", async () => {
    const { auth, counter } = access();
    await expect(auth.authorize(request())).resolves.toBeUndefined();
    await expect(auth.authorize(request(""))).resolves.toBeUndefined();
    expect(counter.keys).toBe(0);
  });

  it("a malformed JWT or bad base64url", async () => {
    const { auth } = access();
    const [header = "", payload = "", signature = ""] = (await jwt()).split(".");
    const malformed = [
      "not-a-jwt",
      `${header}.${payload}`,
      `${header}.${payload}.${signature}.${signature}`,
      `${header}.${payload}.`, // no signature
      `.${payload}.${signature}`,
      `${header}=.${payload}.${signature}`, // padding is not base64url
      `${header}.${payload.slice(0, -1)}*.${signature}`,
      `${header}.${payload}.${signature.replaceAll("-", "+")}x+/`,
      `${header}.${payload}.${signature}A`, // a length no base64 has
      `${base64Url("not json")}.${payload}.${signature}`,
      `${header}.${base64Url("[1,2]")}.${signature}`,
      `${header}.${base64Url(new Uint8Array([0x7b, 0xff, 0x7d]))}.${signature}`, // not UTF-8
      `${header}.${payload}.${signature}`.padEnd(70_000, "A"),
    ];
    for (const token of malformed) await expect(auth.authorize(request(token)), token.slice(0, 60)).resolves.toBeUndefined();
    // the unaltered token still passes: the refusals above are the alterations'
    await expect(auth.authorize(request(`${header}.${payload}.${signature}`))).resolves.toEqual(USER);
  });

  it("an unknown or missing kid", async () => {
    const { auth } = access();
    await expect(auth.authorize(request(await jwt(claims(), team, { kid: "nobody" })))).resolves.toBeUndefined();
    await expect(auth.authorize(request(await jwt(claims(), team, { kid: undefined })))).resolves.toBeUndefined();
    await expect(auth.authorize(request(await jwt(claims(), team, { kid: 7 })))).resolves.toBeUndefined();
  });

  it("a bad signature: altered claims, or another key pair's signature under the team's kid", async () => {
    const { auth } = access();
    const [header = "", , signature = ""] = (await jwt()).split(".");
    const forged = `${header}.${base64Url(JSON.stringify(claims({ email: "mallory@evil.com" })))}.${signature}`;
    await expect(auth.authorize(request(forged))).resolves.toBeUndefined();
    const strangers = await jwt(claims(), stranger, { kid: team.kid });
    await expect(auth.authorize(request(strangers))).resolves.toBeUndefined();
    // under its own kid, the stranger's key is simply not one of the team's
    await expect(auth.authorize(request(await jwt(claims(), stranger)))).resolves.toBeUndefined();
  });

  it("a wrong issuer or audience", async () => {
    const { auth } = access();
    const wrong = [
      claims({ iss: "https://evil.cloudflareaccess.com" }),
      claims({ iss: "http://acme.cloudflareaccess.com" }),
      claims({ iss: `${TEAM}/` }),
      claims({ iss: undefined }),
      claims({ aud: ["another-application"] }),
      claims({ aud: [] }),
      claims({ aud: undefined }),
      claims({ aud: [7] }),
      claims({ aud: { 0: AUD } }),
    ];
    for (const payload of wrong) await expect(auth.authorize(request(await jwt(payload))), JSON.stringify(payload)).resolves.toBeUndefined();
  });

  it("an expired token, beyond the clock skew; a token without exp", async () => {
    const { auth, clock } = access();
    const token = await jwt(claims({ exp: NOW + 60 }));
    clock.ms = NOW_MS + 119_000; // 59 s past exp: within the default 60 s skew
    await expect(auth.authorize(request(token))).resolves.toEqual(USER);
    clock.ms = NOW_MS + 120_000; // exp + 60 s
    await expect(auth.authorize(request(token))).resolves.toBeUndefined();
    clock.ms = NOW_MS;
    await expect(auth.authorize(request(await jwt(claims({ exp: undefined }))))).resolves.toBeUndefined();
    await expect(auth.authorize(request(await jwt(claims({ exp: String(NOW + 60) }))))).resolves.toBeUndefined();
    const strict = access({ clockSkewSeconds: 0 });
    strict.clock.ms = NOW_MS + 60_000;
    await expect(strict.auth.authorize(request(token))).resolves.toBeUndefined();
  });

  it("a token not yet valid (nbf or iat in the future beyond the skew)", async () => {
    const { auth } = access();
    await expect(auth.authorize(request(await jwt(claims({ nbf: NOW + 60 }))))).resolves.toEqual(USER); // within the skew
    await expect(auth.authorize(request(await jwt(claims({ nbf: NOW + 61 }))))).resolves.toBeUndefined();
    await expect(auth.authorize(request(await jwt(claims({ iat: NOW + 61 }))))).resolves.toBeUndefined();
    await expect(auth.authorize(request(await jwt(claims({ nbf: "soon" }))))).resolves.toBeUndefined();
    const { auth: broken } = access({ now: () => Number.NaN });
    await expect(broken.authorize(request(await jwt()))).resolves.toBeUndefined();
  });

  it("any alg but RS256: none, HS256 with the public key as the secret, RS512, and crit", async () => {
    const { auth, counter } = access();
    const payload = base64Url(JSON.stringify(claims()));
    const none = `${base64Url(JSON.stringify({ alg: "none", kid: team.kid }))}.${payload}.`;
    await expect(auth.authorize(request(none))).resolves.toBeUndefined();
    const noneSigned = `${base64Url(JSON.stringify({ alg: "none", kid: team.kid }))}.${payload}.${base64Url("x")}`;
    await expect(auth.authorize(request(noneSigned))).resolves.toBeUndefined();

    // the classic confusion: an HMAC keyed with the (public) verification key
    const hsHeader = base64Url(JSON.stringify({ alg: "HS256", kid: team.kid, typ: "JWT" }));
    const secret = await crypto.subtle.importKey("raw", new TextEncoder().encode(JSON.stringify(team.jwk)), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const mac = await crypto.subtle.sign("HMAC", secret, new TextEncoder().encode(`${hsHeader}.${payload}`));
    await expect(auth.authorize(request(`${hsHeader}.${payload}.${base64Url(new Uint8Array(mac))}`))).resolves.toBeUndefined();

    // a genuine RS256 signature, but a header claiming another algorithm
    await expect(auth.authorize(request(await jwt(claims(), team, { alg: "RS512" })))).resolves.toBeUndefined();
    await expect(auth.authorize(request(await jwt(claims(), team, { alg: "rs256" })))).resolves.toBeUndefined();
    await expect(auth.authorize(request(await jwt(claims(), team, { crit: ["exp"] })))).resolves.toBeUndefined();
    expect(counter.keys).toBe(0); // refused before any key was looked up
    await expect(auth.authorize(request(await jwt()))).resolves.toEqual(USER);
  });
});

describe("cloudflareAccess: keys", () => {
  it("picks up a rotated key: an unknown kid has the keys fetched again, once", async () => {
    const { auth, clock, counter } = access({}, [[team.jwk], [team.jwk, rotated.jwk]]);
    await expect(auth.authorize(request(await jwt()))).resolves.toEqual(USER);
    expect(counter.keys).toBe(1);
    clock.ms += 60_000; // Access rotates its key a minute later
    await expect(auth.authorize(request(await jwt(claims({ exp: NOW + 120 }), rotated)))).resolves.toEqual(USER);
    expect(counter.keys).toBe(2);
    // both keys are cached now: neither token fetches again
    await expect(auth.authorize(request(await jwt(claims({ exp: NOW + 120 }), rotated)))).resolves.toEqual(USER);
    await expect(auth.authorize(request(await jwt(claims({ exp: NOW + 120 }))))).resolves.toEqual(USER);
    expect(counter.keys).toBe(2);
  });

  it("does not refetch for a made-up kid moments after a fetch, nor twice for one token", async () => {
    const { auth, clock, counter } = access();
    await expect(auth.authorize(request(await jwt()))).resolves.toEqual(USER);
    for (let i = 0; i < 5; i++) await expect(auth.authorize(request(await jwt(claims(), team, { kid: `made-up-${i}` })))).resolves.toBeUndefined();
    expect(counter.keys).toBe(1); // the set is younger than 30 s
    clock.ms += 30_000;
    await expect(auth.authorize(request(await jwt(claims(), team, { kid: "made-up" })))).resolves.toBeUndefined();
    expect(counter.keys).toBe(2); // one refetch, whose answer lacks the kid too: no third
    await expect(auth.authorize(request(await jwt(claims(), team, { kid: "made-up" })))).resolves.toBeUndefined();
    expect(counter.keys).toBe(2);
  });

  it("a fresh set that lacks the kid is not fetched again in the same request", async () => {
    const { auth, counter } = access({}, [[team.jwk], [team.jwk, rotated.jwk]]);
    await expect(auth.authorize(request(await jwt(claims(), rotated)))).resolves.toBeUndefined();
    expect(counter.keys).toBe(1);
  });

  it("fetches the keys again after 5 minutes", async () => {
    const { auth, clock, counter } = access();
    const token = await jwt(claims({ exp: NOW + 3600 }));
    await expect(auth.authorize(request(token))).resolves.toEqual(USER);
    clock.ms += 299_999;
    await expect(auth.authorize(request(token))).resolves.toEqual(USER);
    expect(counter.keys).toBe(1);
    clock.ms += 1;
    await expect(auth.authorize(request(token))).resolves.toEqual(USER);
    expect(counter.keys).toBe(2);
  });

  it("skips keys it cannot use: not RSA, another alg or use, no kid, too short, not a key", async () => {
    const short = (await crypto.subtle.generateKey({ ...RSA, modulusLength: 1024 }, true, ["sign", "verify"])) as CryptoKeyPair;
    const shortJwk = { ...((await crypto.subtle.exportKey("jwk", short.publicKey)) as JsonWebKey), kid: "short" } as JsonWebKey;
    const shortSigner: Signer = { kid: "short", privateKey: short.privateKey, jwk: shortJwk };
    const unusable = [
      { ...team.jwk, kty: "EC" },
      { ...team.jwk, alg: "RS512" },
      { ...team.jwk, use: "enc" },
      { ...team.jwk, kid: undefined },
      { ...team.jwk, n: "not-a-modulus!" },
      shortJwk,
      "junk",
      null,
    ] as JsonWebKey[];
    const { auth } = access({}, [[...unusable, rotated.jwk]]);
    await expect(auth.authorize(request(await jwt()))).resolves.toBeUndefined();
    await expect(auth.authorize(request(await jwt(claims(), shortSigner)))).resolves.toBeUndefined();
    await expect(auth.authorize(request(await jwt(claims(), rotated)))).resolves.toEqual(USER); // the usable one still counts
    const { auth: garbage } = access({ keys: () => Promise.resolve({ keys: [team.jwk] } as unknown as JsonWebKey[]) });
    await expect(garbage.authorize(request(await jwt()))).resolves.toBeUndefined();
  });

  it("by default fetches <teamDomain>/cdn-cgi/access/certs once and caches the keys", async () => {
    const urls: string[] = [];
    let status = 500;
    const fetcher = (input: RequestInfo | URL): Promise<Response> => {
      urls.push(input instanceof Request ? input.url : String(input));
      const body = JSON.stringify({ keys: [stranger.jwk, team.jwk], public_cert: {}, public_certs: [] });
      return Promise.resolve(new Response(body, { status })); // even a failure's keys are not trusted
    };
    const clock = { ms: NOW_MS };
    const auth = cloudflareAccess({ teamDomain: "acme.cloudflareaccess.com", audience: AUD, fetch: fetcher, now: () => clock.ms });
    await expect(auth.authorize(request(await jwt()))).resolves.toBeUndefined(); // the endpoint fails: not cached
    status = 200;
    clock.ms += 1000; // past the backoff after one failure (test/admin-access-backoff.test.ts)
    await expect(auth.authorize(request(await jwt()))).resolves.toEqual(USER);
    await expect(auth.authorize(request(await jwt()))).resolves.toEqual(USER);
    // another instance with the same fetch and team domain (a Worker builds one per request) shares the cache
    const again = cloudflareAccess({ teamDomain: TEAM, audience: AUD, fetch: fetcher, now: () => clock.ms });
    await expect(again.authorize(request(await jwt()))).resolves.toEqual(USER);
    expect(urls).toEqual([`${TEAM}/cdn-cgi/access/certs`, `${TEAM}/cdn-cgi/access/certs`]);
  });

  it("a certs document without keys, or not JSON, is no keys", async () => {
    for (const body of ['{"public_cert":{}}', "<html>", '{"keys":"none"}', "null"]) {
      let fetched = 0;
      const fetcher = (): Promise<Response> => {
        fetched += 1;
        return Promise.resolve(new Response(body));
      };
      const auth = cloudflareAccess({ teamDomain: TEAM, audience: AUD, fetch: fetcher, now: () => NOW_MS });
      await expect(auth.authorize(request(await jwt())), body).resolves.toBeUndefined();
      expect(fetched).toBe(1);
    }
  });
});

describe("cloudflareAccess: options", () => {
  const keys = (): Promise<readonly JsonWebKey[]> => Promise.resolve([team.jwk]);
  const base = { teamDomain: TEAM, audience: AUD };

  it("refuses bad options with typed input errors naming the option", () => {
    const cases: [unknown, typeof CheckpointTypeError | typeof CheckpointRangeError, string][] = [
      [undefined, CheckpointTypeError, "options"],
      [null, CheckpointTypeError, "options"],
      ["https://acme.cloudflareaccess.com", CheckpointTypeError, "options"],
      [new Map(), CheckpointTypeError, "options"],
      [{ ...base, audiences: [AUD] }, CheckpointTypeError, "options"],
      [{ audience: AUD }, CheckpointTypeError, "options.teamDomain"],
      [{ ...base, teamDomain: 42 }, CheckpointTypeError, "options.teamDomain"],
      [{ ...base, teamDomain: "" }, CheckpointRangeError, "options.teamDomain"],
      [{ ...base, teamDomain: "acme" }, CheckpointRangeError, "options.teamDomain"],
      [{ ...base, teamDomain: "http://acme.cloudflareaccess.com" }, CheckpointRangeError, "options.teamDomain"],
      [{ ...base, teamDomain: "https://acme.cloudflareaccess.com/cdn-cgi/access/certs" }, CheckpointRangeError, "options.teamDomain"],
      [{ ...base, teamDomain: "https://acme.cloudflareaccess.com:8443" }, CheckpointRangeError, "options.teamDomain"],
      [{ ...base, teamDomain: "https://acme.cloudflareaccess.com?" }, CheckpointRangeError, "options.teamDomain"],
      [{ ...base, teamDomain: "https://user@acme.cloudflareaccess.com" }, CheckpointRangeError, "options.teamDomain"],
      [{ ...base, teamDomain: "https://exa mple.com" }, CheckpointRangeError, "options.teamDomain"],
      [{ teamDomain: TEAM }, CheckpointTypeError, "options.audience"],
      [{ ...base, audience: "" }, CheckpointRangeError, "options.audience"],
      [{ ...base, audience: [] }, CheckpointRangeError, "options.audience"],
      [{ ...base, audience: 7 }, CheckpointTypeError, "options.audience"],
      [{ ...base, audience: [AUD, 7] }, CheckpointTypeError, "options.audience[1]"],
      [{ ...base, audience: [AUD, ""] }, CheckpointRangeError, "options.audience[1]"],
      [{ ...base, keys: [team.jwk] }, CheckpointTypeError, "options.keys"],
      [{ ...base, fetch: "fetch" }, CheckpointTypeError, "options.fetch"],
      [{ ...base, keys, fetch: () => Promise.resolve(new Response()) }, CheckpointTypeError, "options.fetch"],
      [{ ...base, now: NOW_MS }, CheckpointTypeError, "options.now"],
      [{ ...base, clockSkewSeconds: "60" }, CheckpointTypeError, "options.clockSkewSeconds"],
      [{ ...base, clockSkewSeconds: -1 }, CheckpointRangeError, "options.clockSkewSeconds"],
      [{ ...base, clockSkewSeconds: 1.5 }, CheckpointRangeError, "options.clockSkewSeconds"],
      [{ ...base, clockSkewSeconds: 601 }, CheckpointRangeError, "options.clockSkewSeconds"],
    ];
    for (const [options, kind, argument] of cases) {
      const label = options === undefined ? "undefined" : JSON.stringify(options);
      const error = thrown(() => cloudflareAccess(options as CloudflareAccessOptions));
      expect(error, label).toBeInstanceOf(kind);
      expect(error, label).toMatchObject({ operation: "configure", argument });
    }
  });

  it("accepts the edges of the ranges and sends nothing while configuring", () => {
    let fetched = 0;
    const fetcher = (): Promise<Response> => {
      fetched += 1;
      return Promise.resolve(new Response("{}"));
    };
    expect(typeof cloudflareAccess({ ...base, clockSkewSeconds: 0, keys }).authorize).toBe("function");
    expect(typeof cloudflareAccess({ ...base, clockSkewSeconds: 600, fetch: fetcher }).authorize).toBe("function");
    expect(typeof cloudflareAccess({ ...base, audience: [AUD, "second"], keys: undefined, now: undefined }).authorize).toBe("function");
    expect(fetched).toBe(0);
  });
});
