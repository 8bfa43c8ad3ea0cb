import type { PlainResponse } from 'got';
import type { InvalidParam } from '../errors.ts';
import { maskPersonalData } from '../logger.ts';

/** The charset a Content-Type declares, lowercased; utf-8 when it declares none (JSON's only encoding, RFC 8259). */
export function charsetOf(contentType: string | undefined): string {
  const match = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? '');
  return match ? match[1]!.toLowerCase() : 'utf-8';
}

/**
 * A body as text, decoded by the charset its Content-Type declares (any label TextDecoder knows: iso-8859-1,
 * windows-1250, utf-16le…). Throws an Error saying what is wrong when the charset is unknown or, with `fatal`, when
 * the bytes are not valid in it: a record read with the wrong charset would be stored mangled.
 */
export function decodeBody(raw: Buffer, contentType: string | undefined, fatal = true): string {
  const charset = charsetOf(contentType);
  let decoder: InstanceType<typeof TextDecoder>;
  try {
    decoder = new TextDecoder(charset, { fatal });
  } catch {
    throw new Error(`declares charset "${charset.slice(0, 40)}", which is not one we can decode`);
  }
  try {
    return decoder.decode(raw);
  } catch {
    throw new Error(`has bytes that are not valid ${charset}, the charset it declares`);
  }
}

const SECRET_FIELD = /pass|secret|token|key/i;

/**
 * Secrets this request sent (string fields of a JSON body that look secret, the Authorization credentials), to blank
 * them out of a body that echoes them back.
 */
function secretsSent(response: PlainResponse): string[] {
  const { json, body, headers } = response.request.options;
  const secrets: string[] = [];
  const auth = headers.authorization;
  if (typeof auth === 'string') secrets.push(auth.replace(/^\S+\s+/, ''));
  let sent: unknown = json;
  if (sent === undefined && typeof body === 'string') {
    try {
      sent = JSON.parse(body);
    } catch {
      sent = undefined;
    }
  }
  if (sent && typeof sent === 'object') {
    for (const [name, value] of Object.entries(sent)) {
      if (SECRET_FIELD.test(name) && typeof value === 'string') secrets.push(value);
    }
  }
  return secrets.filter((s) => s.length >= 4);
}

/**
 * The response body as text fit for a log line: cut to `maxChars`, personal data masked and any secret the request
 * sent blanked out. Masking runs before the final cut so that a half-cut email cannot slip past the pattern.
 */
export function responseExcerpt(response: PlainResponse, maxChars = 2048): string {
  const raw = (response as { rawBody?: Buffer }).rawBody;
  let text = '';
  if (raw) {
    const head = raw.subarray(0, maxChars * 4);
    try {
      text = decodeBody(head, response.headers['content-type'], false);
    } catch {
      text = head.toString('latin1'); // an unknown charset: show the bytes rather than nothing
    }
  }
  for (const secret of secretsSent(response)) text = text.replaceAll(secret, '[redacted]');
  text = maskPersonalData(text);
  return text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
}

/** What a source adds to an error's summary from its own error shape (e.g. CareCloud's invalid_params). */
export type ErrorDetails = (error: Record<string, unknown>) => string[];

/** The request parameters a source's error shape names as refused (e.g. CareCloud's `invalid_params[].name`). */
export type InvalidParamsOf = (error: Record<string, unknown>) => InvalidParam[];

/** The error object of a JSON error body: its `error` member when it has one, else the body itself. */
export function errorObjectOf(body: unknown): Record<string, unknown> | null {
  if (!body || typeof body !== 'object') return null;
  const record = body as Record<string, unknown>;
  return (typeof record.error === 'object' && record.error !== null ? record.error : record) as Record<string, unknown>;
}

/**
 * A one-line reason taken from a JSON error body (`error.title`, `error.detail` or a `message`, then what the
 * source's `details` finds in its own shape), for error messages. Empty when there is none.
 */
export function errorSummary(body: unknown, details?: ErrorDetails): string {
  const error = errorObjectOf(body);
  if (error === null) return '';
  const parts = [error.title, error.detail, error.message, error.Message].filter(
    (p): p is string => typeof p === 'string' && p !== '',
  );
  parts.push(...(details?.(error) ?? []));
  const text = maskPersonalData(parts.join('; '));
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}
