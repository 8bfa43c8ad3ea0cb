import type { PlainResponse } from 'got';
import { maskPersonalData } from '../logger.ts';

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
  let text = raw ? raw.toString('utf8', 0, Math.min(raw.length, maxChars * 4)) : '';
  for (const secret of secretsSent(response)) text = text.replaceAll(secret, '[redacted]');
  text = maskPersonalData(text);
  return text.length > maxChars ? `${text.slice(0, maxChars)}…` : text;
}

/**
 * A one-line reason taken from a JSON error body (`error.title`, `error.detail`, CareCloud's
 * `error.error_data.invalid_params[].reason`, or a `message`), for error messages. Empty when there is none.
 */
export function errorSummary(body: unknown): string {
  if (!body || typeof body !== 'object') return '';
  const record = body as Record<string, unknown>;
  const error = (typeof record.error === 'object' && record.error !== null ? record.error : record) as Record<string, unknown>;
  const parts = [error.title, error.detail, error.message, error.Message].filter((p): p is string => typeof p === 'string' && p !== '');
  const data = error.error_data as { invalid_params?: unknown } | undefined;
  if (Array.isArray(data?.invalid_params)) {
    for (const param of data.invalid_params.slice(0, 5) as { name?: unknown; reason?: unknown }[]) {
      parts.push(`${typeof param.name === 'string' ? param.name : '?'}: ${String(param.reason)}`);
    }
  }
  const text = maskPersonalData(parts.join('; '));
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}
