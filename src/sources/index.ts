/**
 * The registry of sources. A new source is one folder under src/sources and one line here: its settings, fake and
 * streams come with it, and nothing in the database needs to know it (vouchers of a source not registered here are
 * refused by the write path, see requireSource).
 */
import type { Config } from '../config.ts';
import type { SourceDefinition } from '../types.ts';
import { carecloud } from './carecloud/index.ts';
import { cin7 } from './cin7/index.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each source has its own config section and client
type AnySource = SourceDefinition<any, any>;

const registered: AnySource[] = [carecloud, cin7];

export const sources: readonly AnySource[] = registered;

/** The registered names, in registry order (kept in step by registerSource). */
export const sourceNames: readonly string[] = registered.map((s) => s.name);

export function findSource(name: string): AnySource | undefined {
  return registered.find((s) => s.name === name);
}

/** The source of that name; throws an error naming the registered ones when there is none. */
export function requireSource(name: string): AnySource {
  const source = findSource(name);
  if (!source)
    throw new Error(
      `"${name}" is not a registered source (registered: ${sourceNames.join(', ')}; see src/sources/index.ts)`,
    );
  return source;
}

/** A source's section of the config; null when its credentials are absent (it is then not scheduled). */
export function sectionOf<Section>(config: Config, source: SourceDefinition<Section, unknown>): Section | null {
  return (config.sources[source.name] as Section | null | undefined) ?? null;
}

/**
 * For tests only: adds a source to the registry for the rest of the process, as its line above would, so that a
 * test can prove a source needs nothing outside its folder (test/third-source/). Call before loadConfig.
 */
export function registerSource(source: AnySource): void {
  if (findSource(source.name)) throw new Error(`a source named "${source.name}" is already registered`);
  registered.push(source);
  (sourceNames as string[]).push(source.name);
}
