/**
 * The operator endpoint's one credential, HTTP_TOKEN. Scripts and Prometheus send it as `Authorization: Bearer
 * <token>`. A browser cannot add that header to the requests it makes by itself (Bull Board's page and assets, a
 * link to /metrics), so the status page, once it has the token, trades it at POST /api/session for a session
 * cookie: HttpOnly (no script reads it), SameSite=Strict (no other site's page can make the browser send it), and
 * holding not the token but an HMAC of it, so the cookie never equals the secret itself. Every route is read-only;
 * a cookie therefore only lets a browser read what its holder of the token may read anyway.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Secret } from '../config.ts';
import { registerSecret } from '../secrets.ts';

export const SESSION_COOKIE = 'voucher_sync_session';

/** Compares two strings in time that depends on neither: both are hashed to 32 bytes first. */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The cookie's value for a token: stable for the token's lifetime, useless to anyone who tries it as a token. */
export function sessionValue(token: Secret): string {
  const value = createHmac('sha256', token.reveal()).update('voucher-sync operator session').digest('base64url');
  // It opens the endpoint as the token does: scrubbed from every text like the token itself.
  registerSecret(value);
  return value;
}

function bearerOf(req: Request): string | null {
  const header = req.get('authorization');
  const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return match?.[1] ?? null;
}

function cookieOf(req: Request, name: string): string | null {
  const header = req.get('cookie');
  if (!header) return null;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return null;
}

/** Whether the request carries the token (header) or the session cookie made from it. */
export function isAuthorized(req: Request, token: Secret | null): boolean {
  if (token === null) return true;
  const bearer = bearerOf(req);
  if (bearer !== null) return sameSecret(bearer, token.reveal());
  const cookie = cookieOf(req, SESSION_COOKIE);
  return cookie !== null && sameSecret(cookie, sessionValue(token));
}

/** 401 for a request without the token, in words and with the scheme a client should use. */
export function requireToken(token: Secret | null): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (isAuthorized(req, token)) return next();
    res
      .status(401)
      .set('WWW-Authenticate', 'Bearer realm="voucher-sync"')
      .type('text/plain')
      .send('HTTP_TOKEN is set on this process: send it as "Authorization: Bearer <token>"\n');
  };
}

/**
 * POST /api/session: with the token in the Authorization header, sets the session cookie (see the top of this
 * file); DELETE clears it. Without a configured token there is nothing to trade, and the answer says so.
 */
export function sessionRoutes(token: Secret | null): { create: RequestHandler; remove: RequestHandler } {
  const flags = (req: Request) => `Path=/; HttpOnly; SameSite=Strict${req.secure ? '; Secure' : ''}`;
  return {
    create(req, res) {
      if (token === null) return void res.status(204).end();
      const bearer = bearerOf(req);
      if (bearer === null || !sameSecret(bearer, token.reveal())) {
        return void res.status(401).type('text/plain').send('wrong or missing token\n');
      }
      res
        .set('Set-Cookie', `${SESSION_COOKIE}=${sessionValue(token)}; ${flags(req)}`)
        .status(204)
        .end();
    },
    remove(req, res) {
      res
        .set('Set-Cookie', `${SESSION_COOKIE}=; Max-Age=0; ${flags(req)}`)
        .status(204)
        .end();
    },
  };
}
