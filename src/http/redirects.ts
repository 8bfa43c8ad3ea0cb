/**
 * Redirects are followed only within the configured base URL. A server that sends us elsewhere — another host,
 * another port, http instead of https, a path outside the API — would receive our credentials (the CareCloud
 * login body, a bearer token, the Cin7 Basic header) and could feed us its own data: never follow it, fail instead.
 */
import type { PlainResponse } from 'got';
import { FatalSourceError } from '../errors.ts';

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Where a redirect points, resolved against the URL that answered; null when it cannot be read. */
function targetOf(response: PlainResponse): URL | null {
  const location = response.headers.location;
  if (typeof location !== 'string') return null;
  try {
    return new URL(location, response.url);
  } catch {
    return null;
  }
}

/** Whether the redirect `response` asks for stays on the base URL's origin, under its path. */
export function staysWithin(response: PlainResponse, baseUrl: string): boolean {
  const target = targetOf(response);
  const base = new URL(baseUrl);
  return target !== null && target.origin === base.origin && target.pathname.startsWith(base.pathname);
}

export interface RedirectGuard {
  source: string;
  /** The base URL, ending with `/`. */
  baseUrl: string;
  /** The setting it comes from, for the message (e.g. `CARECLOUD_BASE_URL`). */
  setting: string;
}

/**
 * Throws FatalSourceError naming the Location's host when `response` is a redirect that was not followed because
 * it leaves the base URL. A misconfiguration (or a hijacked server) that retrying cannot fix.
 */
export function refuseForeignRedirect(response: PlainResponse, guard: RedirectGuard): void {
  if (!REDIRECT_STATUSES.has(response.statusCode) || response.headers.location === undefined) return;
  if (staysWithin(response, guard.baseUrl)) return;
  const target = targetOf(response);
  const base = new URL(guard.baseUrl);
  const where =
    target === null
      ? 'an unreadable location'
      : target.origin === base.origin
        ? `${target.host}${target.pathname}`
        : target.host;
  const { method } = response.request.options;
  throw new FatalSourceError(
    `${guard.source} redirected ${method} ${new URL(response.url).pathname} (${response.statusCode}) to ${where}, outside ${guard.setting} ` +
      `(${base.host}${base.pathname}): not followed, so nothing was sent there. Check ${guard.setting}`,
    response.statusCode,
  );
}
