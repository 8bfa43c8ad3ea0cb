/**
 * Helpers that let us talk about a database URL in logs and errors without ever showing its password.
 */

/** `user@host:port/database`: enough to tell which database is meant, never the password. */
export function describeDatabaseUrl(databaseUrl: string): string {
  try {
    const url = new URL(databaseUrl);
    const user = url.username ? `${decodeURIComponent(url.username)}@` : '';
    return `${user}${url.host}/${databaseName(databaseUrl)}`;
  } catch {
    return '[unreadable database URL]';
  }
}

/** The database a URL points at; like libpq, the user name when the path is empty. */
export function databaseName(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  const path = decodeURIComponent(url.pathname.replace(/^\//, ''));
  return path || decodeURIComponent(url.username) || 'postgres';
}

/** The same server and credentials, another database (used to create the target database). */
export function withDatabase(databaseUrl: string, database: string): string {
  const url = new URL(databaseUrl);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

/**
 * Removes the URL's password (as written and decoded) and the whole URL from a text about to be printed.
 * Driver messages do not usually contain them, but a message we did not write is not trusted.
 */
export function hidePassword(text: string, databaseUrl: string): string {
  let result = text.split(databaseUrl).join(describeDatabaseUrl(databaseUrl));
  const password = passwordOf(databaseUrl);
  for (const secret of new Set([password, safeDecode(password)])) {
    // Even a very short password is hidden: a mangled message is better than a leaked secret.
    if (secret) result = result.split(secret).join('[redacted]');
  }
  return result;
}

function passwordOf(databaseUrl: string): string {
  try {
    return new URL(databaseUrl).password;
  } catch {
    // Not a URL that URL can read: still find the user:password@ part by pattern.
    return /^[^:]+:\/\/[^:/@]*:([^@/]*)@/.exec(databaseUrl)?.[1] ?? '';
  }
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
