// Small HTTP helpers: JSON answers, request checks (JSON and form bodies, path segments, accounts).

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

/** The media type of a content-type header, lower-cased, without parameters such as charset. */
function mediaType(contentType: string | null): string {
  return (contentType ?? "").split(";", 1)[0]?.trim().toLowerCase() ?? "";
}

/** Whether a content-type header names the JSON media type (parameters such as charset allowed). */
function isJson(contentType: string | null): boolean {
  return mediaType(contentType) === "application/json";
}

/**
 * The request body's bytes: a 413 as soon as it passes `maxBytes` (declared in
 * content-length, or counted while reading: the rest is never read).
 */
async function readBytes(request: Request, maxBytes: number): Promise<Uint8Array> {
  const tooLarge = new HttpError(413, `the body is larger than ${maxBytes} bytes`);
  if (Number(request.headers.get("content-length") ?? 0) > maxBytes) throw tooLarge;
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (request.body !== null) {
    const reader = (request.body as ReadableStream<Uint8Array>).getReader();
    for (let read = await reader.read(); !read.done; read = await reader.read()) {
      size += read.value.byteLength;
      if (size > maxBytes) {
        await reader.cancel();
        throw tooLarge;
      }
      chunks.push(read.value);
    }
  }
  const bytes = new Uint8Array(size);
  chunks.reduce((offset, chunk) => (bytes.set(chunk, offset), offset + chunk.byteLength), 0);
  return bytes;
}

/**
 * The request body as JSON: a 415 unless the content type is JSON, a 413 as
 * soon as it passes `maxBytes` (declared in content-length, or counted while
 * reading: the rest is never read), a 400 unless it parses.
 */
export async function readJson(request: Request, maxBytes = 64 * 1024): Promise<unknown> {
  if (!isJson(request.headers.get("content-type"))) throw new HttpError(415, "send a JSON body (content-type: application/json)");
  const bytes = await readBytes(request, maxBytes);
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes)) as unknown;
  } catch {
    throw new HttpError(400, "the body is not valid JSON");
  }
}

/** Whether a request's body is an HTML form (`application/x-www-form-urlencoded`). */
export function isForm(request: Request): boolean {
  return mediaType(request.headers.get("content-type")) === "application/x-www-form-urlencoded";
}

/**
 * The request body as an HTML form (`application/x-www-form-urlencoded`): a
 * 415 for another content type, a 413 past `maxBytes`, a 400 unless it is UTF-8.
 */
export async function readForm(request: Request, maxBytes = 8 * 1024): Promise<URLSearchParams> {
  if (!isForm(request)) throw new HttpError(415, "send a form (content-type: application/x-www-form-urlencoded)");
  const bytes = await readBytes(request, maxBytes);
  try {
    return new URLSearchParams(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    throw new HttpError(400, "the form is not valid UTF-8");
  }
}

/** A path segment, percent-decoded; a 400 when its escapes are malformed. */
export function pathSegment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, "the path has a malformed percent-escape");
  }
}

/** Account names: 1 to 64 of A-Z a-z 0-9 . _ - */
export const ACCOUNT = /^[A-Za-z0-9._-]{1,64}$/;

/** An account name from a path segment; a 400 unless it is one. */
export function parseAccount(raw: string): string {
  const account = pathSegment(raw);
  if (!ACCOUNT.test(account)) throw new HttpError(400, "account must be 1 to 64 of A-Z a-z 0-9 . _ -");
  return account;
}
