/**
 * Every secret value this process holds, so that any text about to leave it — an error message, a log line, a
 * ledger row, a failed job's reason in Redis, what a command prints — can be scrubbed of them.
 *
 * Why a process-wide registry rather than an argument: a secret can reach text anywhere (a server echoing the
 * request into its error body, a driver putting a URL in its message), and the places that write text out —
 * pino's stream, the ledger, the job layer, the CLI — are not the places that know the secrets. config.ts
 * registers every Secret it builds; clients register what they derive (a Basic header, a bearer token).
 */

const REDACTED = '[redacted]';

/**
 * Shorter values are not registered: scrubbing a 3-character string out of every text would wreck it, and a
 * secret that short is no secret. Chosen to match what response-text.ts already blanks out of echoed bodies.
 */
export const MIN_SECRET_LENGTH = 4;

// Sorted longest first whenever it changes, so that a secret containing another is replaced whole.
let forms: string[] = [];
const registered = new Set<string>();

const jsonEscaped = (value: string) => JSON.stringify(value).slice(1, -1);

/**
 * The ways a value can appear in text: as is, URL-encoded (path, query or form), and each of those inside a JSON
 * string up to three levels deep — a request body echoed inside a JSON error body, logged as a JSON line, is three.
 */
function formsOf(value: string): string[] {
  const plain = [value, encodeURIComponent(value), new URLSearchParams({ v: value }).toString().slice(2)];
  return plain.flatMap((form) => [
    form,
    jsonEscaped(form),
    jsonEscaped(jsonEscaped(form)),
    jsonEscaped(jsonEscaped(jsonEscaped(form))),
  ]);
}

/** The password inside a URL such as `redis://:pw@host` (decoded and as written), or nothing. */
function urlPasswords(value: string): string[] {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return [];
  try {
    const { password } = new URL(value);
    return password === '' ? [] : [password, decodeURIComponent(password)];
  } catch {
    return [];
  }
}

/**
 * Registers a secret (and, for a URL, the password inside it) to be scrubbed from every text from now on.
 * Values shorter than MIN_SECRET_LENGTH are ignored.
 */
export function registerSecret(value: string): void {
  let changed = false;
  for (const secret of [value, ...urlPasswords(value)]) {
    if (secret.length < MIN_SECRET_LENGTH || registered.has(secret)) continue;
    registered.add(secret);
    for (const form of formsOf(secret)) if (!forms.includes(form)) forms.push(form);
    changed = true;
  }
  if (changed) forms = [...forms].sort((a, b) => b.length - a.length);
}

/** The text with every registered secret, in every form formsOf knows, replaced by `[redacted]`. */
export function scrubSecrets(text: string): string {
  let scrubbed = text;
  for (const form of forms) if (scrubbed.includes(form)) scrubbed = scrubbed.replaceAll(form, REDACTED);
  return scrubbed;
}

/**
 * Scrubs an error in place — message and stack, and those of its causes — and returns it, for errors about to be
 * stored or rethrown where their text is kept (BullMQ keeps a failed job's message and stack in Redis).
 */
export function scrubError<T>(error: T): T {
  const seen = new Set<unknown>();
  for (let current: unknown = error; current instanceof Error && !seen.has(current); current = current.cause) {
    seen.add(current);
    try {
      current.message = scrubSecrets(current.message);
      if (current.stack) current.stack = scrubSecrets(current.stack);
    } catch {
      // A frozen or read-only error: leave it; what writes its text out scrubs again.
    }
  }
  return error;
}
