/**
 * What PostgreSQL cannot store of a value received from an API, found without recursion (a record nested
 * ten thousand levels deep must not overflow the stack of the code that looks at it), and a rendering of
 * such a value that it can store.
 *
 * jsonb and text refuse U+0000 and lone UTF-16 surrogates ("a\ud800b": JavaScript strings may hold them,
 * JSON.stringify writes them as `\ud800`, and PostgreSQL rejects the escape); JSON.stringify itself fails on
 * values nested a few thousand levels deep.
 */

/** How deep a rejected record is kept in rejected_records; deeper parts are replaced by a note. */
export const KEPT_DEPTH = 100;

/** Escapes in JSON text that may hide a NUL or a lone surrogate (or a harmless look-alike, e.g. `\\u0000`). */
export const SUSPECT_ESCAPE = /\\u0000|\\ud[89a-f]/;

/** The JSON text of `value`, or null when JSON.stringify cannot write it (too deep). */
export function tryStringify(value: unknown): string | null {
  try {
    return JSON.stringify(value);
  } catch {
    return null;
  }
}

interface Visit {
  value: unknown;
  path: string;
  depth: number;
}

/**
 * Why `value` cannot be stored, naming where in it the problem is (`raw.note[2]`), or null when nothing in
 * it is refused. Depth counts only when `maxDepth` is given: the caller knows JSON.stringify failed on it.
 */
export function findUnstorable(value: unknown, root: string, maxDepth?: number): string | null {
  const stack: Visit[] = [{ value, path: root, depth: 0 }];
  while (stack.length > 0) {
    const { value: current, path, depth } = stack.pop()!;
    if (typeof current === 'string') {
      const problem = textProblem(current);
      if (problem) return `${path} ${problem}, which PostgreSQL cannot store`;
      continue;
    }
    if (current === null || typeof current !== 'object') continue;
    if (maxDepth !== undefined && depth >= maxDepth)
      return `${path} is nested more than ${maxDepth} levels deep, too deep to be written as JSON`;
    if (Array.isArray(current)) {
      current.forEach((item, i) => stack.push({ value: item, path: extend(path, `[${i}]`), depth: depth + 1 }));
      continue;
    }
    for (const [key, item] of Object.entries(current)) {
      const problem = textProblem(key);
      if (problem) return `a key of ${path} ${problem}, which PostgreSQL cannot store`;
      stack.push({ value: item, path: extend(path, pathKey(key)), depth: depth + 1 });
    }
  }
  return null;
}

// A high surrogate not followed by a low one, or a low one not preceded by a high one (no `u` flag: the
// expression sees UTF-16 code units).
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/** What is wrong with a text for PostgreSQL, in words, or null. */
function textProblem(text: string): string | null {
  // Positions, not the text: a value may be personal data, and the reason is logged.
  const nul = text.indexOf('\u0000');
  if (nul >= 0) return `contains a NUL character (at character ${nul})`;
  const lone = LONE_SURROGATE.exec(text);
  if (lone)
    return `contains a lone UTF-16 surrogate (U+${lone[0].charCodeAt(0).toString(16).toUpperCase()} at character ${lone.index})`;
  return null;
}

/** A path one step deeper; a long one (deep nesting) is cut, so that a reason stays readable. */
function extend(path: string, step: string): string {
  if (path.length <= 120) return `${path}${step}`;
  return path.endsWith('…') ? path : `${path}…`;
}

function pathKey(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key)
    ? `.${key}`
    : `[${JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}…` : key)}]`;
}

/** A text PostgreSQL stores: NUL and lone surrogates become U+FFFD. */
export function storableText(text: string): string {
  const wellFormed = LONE_SURROGATE.test(text) ? text.replace(LONE_SURROGATES, '\uFFFD') : text;
  return wellFormed.includes('\u0000') ? wellFormed.replaceAll('\u0000', '\uFFFD') : wellFormed;
}

/**
 * A copy of a JSON value that PostgreSQL's jsonb accepts whatever was received: texts and keys made
 * storable, and what lies deeper than `maxDepth` replaced by a note saying so. Built without recursion.
 */
export function storableCopy(value: unknown, maxDepth = KEPT_DEPTH): unknown {
  const holder: { value?: unknown } = {};
  const stack: { value: unknown; into: Record<string, unknown> | unknown[]; key: string | number; depth: number }[] = [
    { value, into: holder as Record<string, unknown>, key: 'value', depth: 0 },
  ];
  while (stack.length > 0) {
    const { value: current, into, key, depth } = stack.pop()!;
    const put = (copy: unknown) => ((into as Record<string | number, unknown>)[key] = copy);
    if (typeof current === 'string') put(storableText(current));
    else if (typeof current === 'number') put(Number.isFinite(current) ? current : null);
    else if (typeof current === 'boolean' || current === null) put(current);
    else if (typeof current === 'bigint') put(String(current));
    else if (typeof current !== 'object') put(null);
    else if (depth >= maxDepth) put(`(nested deeper than ${maxDepth} levels: cut here)`);
    else if (Array.isArray(current)) {
      const copy: unknown[] = new Array<unknown>(current.length).fill(null);
      put(copy);
      current.forEach((item, i) => stack.push({ value: item, into: copy, key: i, depth: depth + 1 }));
    } else {
      const copy: Record<string, unknown> = {};
      put(copy);
      for (const [k, item] of Object.entries(current))
        stack.push({ value: item, into: copy, key: storableText(k), depth: depth + 1 });
    }
  }
  return holder.value;
}
