/**
 * Posts alerts as JSON to ALERT_WEBHOOK_URL, retried with backoff and bounded by a timeout, so that a receiver that
 * fails or hangs delays an alert but never holds the service. The URL is a secret (Slack, Teams and most chat
 * webhooks carry their credential in it): it is never logged nor put in an error message; errors name what went
 * wrong — a status, a timeout, a network error — and nothing of the request.
 */
import { got, HTTPError, RequestError, TimeoutError } from 'got';
import type { Secret } from '../config-fields.ts';

export interface WebhookOptions {
  url: Secret;
  /** The deadline of one attempt, body included, in ms (default 10 s). */
  timeoutMs?: number;
  /** Attempts after the first (default 3). */
  retries?: number;
  /** Wait before the first retry in ms, doubled at each further one (default 1 s). */
  backoffMs?: number;
}

/** The alert could not be delivered; the message never contains the URL. */
export class WebhookError extends Error {
  override readonly name = 'WebhookError';
}

export type SendWebhook = (payload: object, signal?: AbortSignal) => Promise<void>;

// Worth another try: the receiver is busy, restarting or rate limiting. Other 4xx mean the request itself is wrong.
const RETRIED = [408, 425, 429, 500, 502, 503, 504];

function describe(error: unknown): string {
  if (error instanceof HTTPError) return `the receiver answered ${error.response.statusCode}`;
  if (error instanceof TimeoutError) return 'the receiver did not answer in time';
  if (error instanceof RequestError) return `the request failed (${error.code})`;
  return 'the request failed';
}

export function createWebhookSender(options: WebhookOptions): SendWebhook {
  const { url, timeoutMs = 10_000, retries = 3, backoffMs = 1000 } = options;
  const client = got.extend({
    timeout: { request: timeoutMs },
    retry: {
      limit: retries,
      methods: ['POST'],
      statusCodes: RETRIED,
      calculateDelay: ({ attemptCount, retryOptions, error, computedValue }) =>
        computedValue === 0 || attemptCount > retryOptions.limit
          ? 0
          : error.response?.statusCode === 429
            ? Math.max(computedValue, backoffMs)
            : backoffMs * 2 ** (attemptCount - 1),
    },
    headers: { 'user-agent': 'voucher-sync' },
  });
  return async (payload, signal) => {
    try {
      await client.post(url.reveal(), { json: payload, signal });
    } catch (error) {
      // Not kept as the cause: got's errors carry the request's options, the URL among them.
      throw new WebhookError(`could not deliver the alert to ALERT_WEBHOOK_URL: ${describe(error)}`);
    }
  };
}
