import pretty from 'pino-pretty';
import { pino, stdTimeFunctions, type Logger, type DestinationStream } from 'pino';
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

export type LogFormat = 'json' | 'pretty';

export interface LoggerOptions {
  /**
   * `json`: one JSON object a line, for log collectors. `pretty`: one readable line per entry (pino-pretty, in
   * this process and synchronously, so a line is written before the process can exit). @default 'json'
   */
  format?: LogFormat;
  /** Colours in pretty output. @default whether stdout is a terminal, when writing to stdout */
  colorize?: boolean;
}

/**
 * The process logger. Child loggers carry `{source, stream, runId, jobId}`; a key the parent already binds to the
 * same value is not bound again (pino would write it twice on every line). Times are ISO 8601 UTC.
 * Field names in REDACT are censored; on top of that every finished line is scrubbed of the registered secrets
 * (src/secrets.ts), since a secret can hide in any text — an error message, a body the server echoed. The
 * scrubbing happens on the JSON line, before pretty printing, so it holds for both formats.
 * @param destination defaults to stdout; tests pass a stream to read what was logged.
 */
export function createLogger(level = 'info', destination?: DestinationStream, options: LoggerOptions = {}): Logger {
  const stream =
    options.format === 'pretty'
      ? pretty({
          destination: destination ?? 1,
          sync: true,
          colorize: options.colorize ?? (destination === undefined && process.stdout.isTTY === true),
          translateTime: false,
          ignore: 'pid,hostname',
          singleLine: true,
        })
      : destination;
  const logger = pino(
    {
      level,
      redact: { paths: REDACT, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: stdTimeFunctions.isoTime,
      hooks: { streamWrite: scrubSecrets },
    },
    stream,
  );
  return withoutRepeatedBindings(logger);
}

/**
 * Children are created from one another along the way (the process, a source's client, a run, a slice), and more
 * than one of them knows the source or the job: each binds only what its parents have not bound already.
 * Children inherit the method from the root (pino creates them with Object.create).
 */
function withoutRepeatedBindings(root: Logger): Logger {
  const child = root.child;
  root.child = function (this: Logger, bindings, childOptions) {
    const bound = this.bindings();
    const fresh = Object.fromEntries(Object.entries(bindings).filter(([key, value]) => bound[key] !== value));
    return child.call(this, fresh, childOptions);
  } as Logger['child'];
  return root;
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
