import type { InvalidParam } from '../../errors.ts';
import type { ErrorDetails, InvalidParamsOf } from '../../http/response-text.ts';

/** CareCloud's own error shape: `error.error_data.invalid_params[]`, each `name: reason` (the first five). */
export const careCloudErrorDetails: ErrorDetails = (error) => {
  const data = error.error_data as { invalid_params?: unknown } | undefined;
  if (!Array.isArray(data?.invalid_params)) return [];
  return (data.invalid_params.slice(0, 5) as { name?: unknown; reason?: unknown }[]).map(
    (param) => `${typeof param.name === 'string' ? param.name : '?'}: ${String(param.reason)}`,
  );
};

/**
 * The parameters a CareCloud 400 names (`invalid_params[].name`). The spec lets a name be a string or a list of
 * strings (and other types, which name nothing we sent); entries that are not objects are skipped.
 */
export const careCloudInvalidParams: InvalidParamsOf = (error) => {
  const data = error.error_data as { invalid_params?: unknown } | undefined;
  if (!Array.isArray(data?.invalid_params)) return [];
  return data.invalid_params.slice(0, 100).flatMap((param: unknown): InvalidParam[] => {
    if (typeof param !== 'object' || param === null) return [];
    const { name, message } = param as { name?: unknown; message?: unknown };
    const names = typeof name === 'string' ? [name] : Array.isArray(name) ? name : [];
    const text = typeof message === 'string' ? message : '';
    return names.filter((n): n is string => typeof n === 'string').map((n) => ({ name: n, message: text }));
  });
};

/**
 * The largest whole number above 1 and below `refused` that a refusal's message names ("count must be from 1 to 700"
 * → 700), as the maximum to try first; undefined when it names none. Only a hint: the search checks it.
 */
export function maximumNamed(message: string, refused: number): number | undefined {
  const numbers = (message.slice(0, 500).match(/\d[\d,]*/g) ?? []).map((n) => Number(n.replaceAll(',', '')));
  const candidates = numbers.filter((n) => Number.isSafeInteger(n) && n > 1 && n < refused);
  return candidates.length > 0 ? Math.max(...candidates) : undefined;
}
