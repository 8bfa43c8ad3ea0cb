/**
 * The CareCloud token session: login with the configured credentials, the bearer token's lifetime
 * (`valid_to`, a local time of the project) and its renewal, shared by concurrent callers. Apart from the
 * client, as Singer SDK authenticators are.
 */
import type { Got } from 'got';
import { DateTime } from 'luxon';
import { AbortedError, FatalSourceError, RetriableSourceError } from '../../errors.ts';
import type { CallOptions, HttpContext } from '../../http/call-options.ts';
import type { Logger } from '../../logger.ts';
import { registerSecret } from '../../secrets.ts';
import type { Clock } from '../../types.ts';
import type { CareCloudConfig } from './config.ts';

// Renew a minute before `valid_to`: the project's clock and ours differ a little, and a request takes time.
const RENEW_BEFORE_MS = 60_000;

export interface TokenSession {
  /** The current token, logging in when there is none, it is due, or it is `stale` (refused by the server). */
  token(call: CallOptions, stale?: string): Promise<string>;
}

export interface TokenSessionOptions {
  config: Pick<CareCloudConfig, 'appId' | 'login' | 'password' | 'timezone'>;
  http: Got;
  logger: Logger;
  /** Decides when the token is due for renewal. */
  clock: Clock;
}

/** `valid_to` is a local time of the project (`YYYY-MM-DD HH:MM:SS`, sometimes ISO) without offset. */
function parseLocalTime(value: unknown, zone: string): number | null {
  if (typeof value !== 'string') return null;
  const sql = DateTime.fromFormat(value.trim(), 'yyyy-MM-dd HH:mm:ss', { zone });
  const parsed = sql.isValid ? sql : DateTime.fromISO(value.trim(), { zone });
  return parsed.isValid ? parsed.toMillis() : null;
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortedError('Stopped waiting for the CareCloud login', { cause: signal.reason }));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export function createTokenSession({ config, http, logger, clock }: TokenSessionOptions): TokenSession {
  let session: { token: string; renewAt: number } | null = null;
  let loggingIn: Promise<string> | null = null;

  async function login(call: CallOptions): Promise<string> {
    let body: unknown;
    try {
      ({ body } = await http.post('users/actions/login', {
        json: {
          user_external_application_id: config.appId.reveal(),
          login: config.login,
          password: config.password.reveal(),
        },
        retry: { methods: ['POST'] }, // logging in twice is harmless
        context: { observer: call.observer, share: call.share } satisfies HttpContext,
      }));
    } catch (error) {
      if (error instanceof FatalSourceError && (error.status === 401 || error.status === 403)) {
        throw new FatalSourceError(
          `CareCloud rejected the login credentials (${error.status}): check CARECLOUD_LOGIN, CARECLOUD_PASSWORD and CARECLOUD_APP_ID`,
          error.status,
          { cause: error },
        );
      }
      throw error;
    }
    const data = (body as { data?: { bearer_token?: unknown; valid_to?: unknown } } | null)?.data;
    if (typeof data?.bearer_token !== 'string' || data.bearer_token === '') {
      throw new RetriableSourceError('CareCloud login answer has no data.bearer_token');
    }
    // Scrubbed from every text from now on, like the configured secrets: a server may echo it in an error body.
    registerSecret(data.bearer_token);
    const validTo = parseLocalTime(data.valid_to, config.timezone);
    if (validTo === null)
      logger.warn('CareCloud login answer has no readable valid_to; the token is kept until CareCloud rejects it');
    session = {
      token: data.bearer_token,
      renewAt: validTo === null ? Number.POSITIVE_INFINITY : validTo - RENEW_BEFORE_MS,
    };
    logger.info({ validTo: validTo === null ? null : new Date(validTo).toISOString() }, 'Logged in to CareCloud');
    return data.bearer_token;
  }

  return {
    token(call, stale) {
      if (session && (session.token === stale || clock.now().getTime() >= session.renewAt)) session = null;
      if (session) return Promise.resolve(session.token);
      // The login is shared, so no caller's signal cancels it; each caller can still stop waiting for it.
      loggingIn ??= login(call).finally(() => {
        loggingIn = null;
      });
      return untilAborted(loggingIn, call.signal);
    },
  };
}
