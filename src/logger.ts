import { pino, type Logger, type DestinationStream } from 'pino';
import { scrubSecrets } from './secrets.ts';

export type { Logger };

/** Field names whose values never reach a log line, wherever they sit in a logged object. */
const REDACT = [
  'password',
  'apiKey',
  'api_key',
  'token',
  'bearer_token',
  'authorization',
  'Authorization',
  'headers.authorization',
  'headers.Authorization',
  '*.password',
  '*.apiKey',
  '*.token',
  '*.bearer_token',
  '*.authorization',
  '*.headers.authorization',
  '*.customerEmail',
  '*.CustomerEmail',
  '*.email',
];

/**
 * The process logger. Child loggers carry `{source, stream, runId, jobId}`.
 * Field names in REDACT are censored; on top of that every finished line is scrubbed of the registered secrets
 * (src/secrets.ts), since a secret can hide in any text — an error message, a body the server echoed.
 * @param destination defaults to stdout; tests pass a stream to read what was logged.
 */
export function createLogger(level = 'info', destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT, censor: '[redacted]' },
      base: { pid: process.pid },
      hooks: { streamWrite: scrubSecrets },
    },
    destination,
  );
}

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;
// 13 to 19 digits, optionally grouped by spaces or dashes: card numbers.
const CARD = /\b(?:\d[ -]?){12,18}\d\b/g;
// A leading + or 9 to 15 digits with optional separators: phone numbers.
const PHONE = /(?:\+\d[\d ()-]{7,}\d|\b\d{9,15}\b)/g;

/**
 * Masks registered secrets, emails, card numbers and phone numbers in text about to be logged or stored in an error
 * (the ledger's `sync_runs.error` goes through here). Secrets go first: one could look like an email or a number.
 */
export function maskPersonalData(text: string): string {
  return scrubSecrets(text).replace(EMAIL, '[email]').replace(CARD, '[card]').replace(PHONE, '[phone]');
}
