// Small HTTP helpers: JSON answers, request checks, the admin token.

/** An error the client caused: answered with its status and a JSON message. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** A JSON response. */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return Response.json(body, { status, headers: { "cache-control": "no-store", ...headers } });
}

/** The request body as JSON, or a 400. */
export async function readJson(request: Request, maxBytes = 64 * 1024): Promise<unknown> {
  const type = request.headers.get("content-type") ?? "";
  if (!type.startsWith("application/json")) throw new HttpError(415, "send a JSON body (content-type: application/json)");
  const text = await request.text();
  if (text.length > maxBytes) throw new HttpError(413, `the body is larger than ${maxBytes} bytes`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(400, "the body is not valid JSON");
  }
}

async function digest(text: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
}

/**
 * Checks `Authorization: Bearer <token>` against the configured token in
 * constant time (both sides hashed to equal length first). No configured
 * token: admin routes are disabled.
 */
export async function requireAdmin(request: Request, token: string | undefined): Promise<void> {
  if (token === undefined || token === "") {
    throw new HttpError(403, "admin routes are disabled: set the ADMIN_TOKEN secret");
  }
  const header = request.headers.get("authorization") ?? "";
  const match = /^Bearer (.+)$/.exec(header);
  const given = match?.[1] ?? "";
  const [a, b] = await Promise.all([digest(given), digest(token)]);
  if (match === null || !crypto.subtle.timingSafeEqual(a, b)) {
    throw new HttpError(401, "a valid admin bearer token is required", { "www-authenticate": 'Bearer realm="admin"' });
  }
}
