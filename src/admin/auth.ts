// How the admin handler tells who a request is: the interface every way of
// authorizing implements (a bearer token with its session cookie, Cloudflare
// Access, your own), and the rule for writes of browser credentials.

/** Who an admin request is. */
export interface AdminIdentity {
  /** Who: a user's e-mail (Access), `"token"` (a bearer token or its session), or your own id. */
  readonly subject: string;
  /** How the request proved it: `"bearer"`, `"session"`, `"access"`, or your own word. */
  readonly method: string;
  /**
   * Whether the browser sends this credential by itself (a cookie, Access's
   * header): the handler then refuses writes that do not prove they come from
   * its own origin (CSRF).
   */
  readonly ambient: boolean;
}

/**
 * How the admin handler tells who a request is. Use `bearerToken(token)` or
 * `cloudflareAccess({ teamDomain, audience })`, or write your own.
 */
export interface AdminAuth {
  /**
   * The identity a request proves, or `undefined` when it proves none. A bad credential answers `undefined`, never throws.
   *
   * @param request - The request to authorize.
   * @param basePath - The base path of the handler asking (the handler always passes it): a credential bound to one
   *   handler, such as `bearerToken`'s session, counts only there. A route of your own beside the handler may omit it;
   *   `bearerToken` then takes the session of any base path the request's path is under.
   */
  authorize(request: Request, basePath?: string): Promise<AdminIdentity | undefined>;
  /**
   * Present when the page should offer a login form: checks the secret typed
   * into it and answers the `Set-Cookie` value of a session, or `undefined`
   * when the secret is wrong.
   */
  login?(secret: string, url: URL): Promise<string | undefined>;
  /** With `login`: the `Set-Cookie` value that ends a session. */
  logout?(url: URL): string;
}
