/**
 * Reads one page ahead: while the caller writes page n, page n+1 is already being fetched. The paginators
 * decide their next request from the records they fetched, never from what was written, so this changes
 * no result — it only overlaps the API's latency with the database's. At most two pages are held.
 */
export async function* prefetched<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  let next = iterator.next();
  try {
    for (;;) {
      const result = await next;
      if (result.done) return;
      next = iterator.next();
      // A failure of the page fetched ahead surfaces when the caller asks for that page, not before.
      next.catch(() => undefined);
      yield result.value;
    }
  } finally {
    // The caller stopped early (shutdown, error): let the fetch ahead finish quietly, then close the source.
    void next.then(
      () => iterator.return?.(),
      () => undefined,
    );
  }
}
