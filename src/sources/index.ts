/** The registry of sources. A new source is one folder under src/sources and one line here. */
import type { SourceDefinition } from '../types.ts';
import { carecloud } from './carecloud/index.ts';
import { cin7 } from './cin7/index.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each source has its own config section and client
export const sources: readonly SourceDefinition<any, any>[] = [carecloud, cin7];

export const sourceNames = sources.map((s) => s.name);

export function findSource(name: string) {
  return sources.find((s) => s.name === name);
}
