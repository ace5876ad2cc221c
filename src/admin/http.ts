// The admin handler's HTTP plumbing: refusals with their status, JSON and
// HTML answers, redirects back to a page, path and query parameters, and the
// login form's body, read through a bounded reader.
import { checkPosition } from "../core/validate.js";
import { HTML_HEADERS } from "./page.js";

/** The longest notice shown, in characters. */
export const MAX_NOTICE = 200;
/** The largest login form body, in bytes. */
export const MAX_FORM_BYTES = 4096;

/** A refusal with its status, answered as JSON (`{ error, ...fields }`) or as an HTML page; the error behind it, if any, is `cause`. */
export class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
    options?: { readonly cause?: unknown; readonly fields?: Readonly<Record<string, string>> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.fields = options?.fields ?? {};
  }

  /** What the JSON answer carries besides `error`. */
  readonly fields: Readonly<Record<string, string>>;
}

/** A JSON answer, never cached. */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff", ...headers } });
}

/** An HTML answer with the admin page's headers (CSP, no caching, no framing). */
export function html(body: string, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { ...HTML_HEADERS, ...headers } });
}

/** A path segment, percent-decoded; a malformed escape is a 400. */
export function segment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new Refusal(400, "malformed escape in the path");
  }
}

/** A 303 back to a page of the admin, with a notice to show there. */
export function back(to: string, notice: string | undefined, headers: Record<string, string> = {}): Response {
  const location = notice === undefined ? to : `${to}?notice=${encodeURIComponent(notice.slice(0, MAX_NOTICE))}`;
  return new Response(null, { status: 303, headers: { location, "cache-control": "no-store", ...headers } });
}

/** JSON for scripts, a 303 back with a notice for the page's forms. */
export function answer(asJson: boolean, to: string, body: unknown, status: number, notice: string): Response {
  return asJson ? json(body, status) : back(to, notice);
}

/** A non-negative position from a query parameter or a path segment (0 when absent), a 400 otherwise. */
export function positionParameter(raw: string | null, what: string): number {
  if (raw === null || raw === "") return 0;
  if (!/^[0-9]{1,16}$/.test(raw)) throw new Refusal(400, `${what} must be a non-negative integer`);
  try {
    return checkPosition("status", undefined, Number(raw), what);
  } catch {
    throw new Refusal(400, `${what} must be a non-negative safe integer`);
  }
}

const TOO_LARGE = `the form is too large (at most ${MAX_FORM_BYTES} bytes)`;

/**
 * The form fields of a urlencoded body of at most {@link MAX_FORM_BYTES}
 * bytes. A `Content-Length` over the limit is refused before anything is
 * read; a body without one is read chunk by chunk and refused (the rest
 * cancelled) as soon as more than the limit has arrived.
 */
export async function readForm(request: Request): Promise<URLSearchParams> {
  if (!(request.headers.get("content-type") ?? "").toLowerCase().startsWith("application/x-www-form-urlencoded")) {
    throw new Refusal(415, "send the form as application/x-www-form-urlencoded");
  }
  const declared = request.headers.get("content-length");
  if (declared !== null && (!/^[0-9]+$/.test(declared.trim()) || Number(declared.trim()) > MAX_FORM_BYTES)) throw new Refusal(413, TOO_LARGE);
  return new URLSearchParams(new TextDecoder().decode(await readBounded(request.body, MAX_FORM_BYTES)));
}

/** At most `limit` bytes of `body` (none for no body); a 413 once more arrives, the rest of the body cancelled. */
async function readBounded(body: ReadableStream<Uint8Array> | null, limit: number): Promise<Uint8Array> {
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw new Refusal(413, TOO_LARGE);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
}
