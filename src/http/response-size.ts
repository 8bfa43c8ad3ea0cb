/**
 * A cap on what one response may be once decompressed. got counts `downloadProgress.transferred` after
 * decompression (it reads from decompress-response's stream), so a gzip bomb is measured by what it becomes, not by
 * what crossed the wire; `total` is the Content-Length header, the compressed size, which a body only outgrows.
 */
import type { CancelableRequest, Options, Progress, Response } from 'got';
import { ResponseTooLargeError } from '../errors.ts';

/** `16 MB`, `512 kB`, `900 bytes`, as the cap is named in messages. */
export function formatBytes(bytes: number): string {
  const mb = bytes / 1024 ** 2;
  if (mb >= 1) return `${Number.isInteger(mb) ? mb : mb.toFixed(1)} MB`;
  const kb = bytes / 1024;
  return kb >= 1 ? `${Number.isInteger(kb) ? kb : kb.toFixed(1)} kB` : `${bytes} bytes`;
}

export interface ResponseCap {
  source: string;
  maxBytes: number;
  /** The request's options, for its method and path. */
  request: Options;
}

/**
 * Watches `pending` and cancels it — which destroys the socket, so nothing more is read or decompressed — as soon
 * as its body declares or grows past `maxBytes`. Returns a function that gives the ResponseTooLargeError once that
 * happened (undefined before): cancelling makes got reject with a CancelError, which the caller replaces with it.
 * A cancelled request is not retried; the scan decides what to ask instead (a smaller page).
 */
export function capResponseSize(
  pending: CancelableRequest<Response>,
  cap: ResponseCap,
): () => ResponseTooLargeError | undefined {
  let tooLarge: ResponseTooLargeError | undefined;
  pending.on('downloadProgress', ({ transferred, total }: Progress) => {
    if (tooLarge || (transferred <= cap.maxBytes && (total ?? 0) <= cap.maxBytes)) return;
    const path =
      cap.request.url instanceof URL ? cap.request.url.pathname : String(cap.request.url ?? '').split('?')[0];
    const size =
      transferred > cap.maxBytes
        ? `grew past ${formatBytes(cap.maxBytes)} once decompressed`
        : `declared ${formatBytes(total!)}`;
    tooLarge = new ResponseTooLargeError(
      `${cap.source} answer to ${cap.request.method} ${path} ${size}, more than HTTP_MAX_RESPONSE_SIZE (${formatBytes(cap.maxBytes)}): stopped reading it`,
      cap.maxBytes,
    );
    pending.cancel();
  });
  return () => tooLarge;
}
