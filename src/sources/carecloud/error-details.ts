import type { ErrorDetails } from '../../http/response-text.ts';

/** CareCloud's own error shape: `error.error_data.invalid_params[]`, each `name: reason` (the first five). */
export const careCloudErrorDetails: ErrorDetails = (error) => {
  const data = error.error_data as { invalid_params?: unknown } | undefined;
  if (!Array.isArray(data?.invalid_params)) return [];
  return (data.invalid_params.slice(0, 5) as { name?: unknown; reason?: unknown }[]).map(
    (param) => `${typeof param.name === 'string' ? param.name : '?'}: ${String(param.reason)}`,
  );
};
