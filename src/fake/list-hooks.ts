/** What a list-request hook learns about the request about to be served. */
export interface ListRequestInfo {
  path: string;
  query: URLSearchParams;
  /** 1 for the first list request served since the hook was added, then 2, 3, ... */
  n: number;
}

/** May mutate the store: the page is computed after the hook (and its promise) completes. */
export type ListHook = (info: ListRequestInfo) => void | Promise<void>;

export function createListHooks() {
  const hooks = new Map<ListHook, { n: number }>();
  return {
    /** Adds a hook; the returned function removes it. */
    add(fn: ListHook): () => void {
      hooks.set(fn, { n: 0 });
      return () => {
        hooks.delete(fn);
      };
    },
    async run(path: string, query: URLSearchParams) {
      for (const [fn, counter] of [...hooks]) await fn({ path, query, n: ++counter.n });
    },
  };
}
