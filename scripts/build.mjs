/**
 * `npm run build`: compiles src/ and jobs/ into dist/, what `npm start`, `npm run sync` and the Docker image run, and
 * copies beside it what the code reads at run time (src/package-root.ts: the status page's files, the migrations,
 * package.json).
 *
 * The compiled program is one bundle, dist/src/cli/main.js, made by esbuild from the TypeScript sources with the
 * packages it uses inside, and a chunk for each module loaded only by some processes (the HTTP endpoint with express
 * and Bull Board, the alert loop). A command starts in a few hundred milliseconds less than from one file per module:
 * Node resolves, reads and compiles some 700 files otherwise, most of them BullMQ's. What stays outside: what cannot
 * be bundled or need not be (EXTERNAL), and Prisma's query compiler, whose 3.4 MB of WebAssembly its client imports as
 * a 4.6 MB JavaScript string of base64 — 150 ms to parse at every start, and 45 ms more to decode. The build writes
 * the WebAssembly itself to a file once, and the bundle reads it as bytes (prismaQueryCompilerFromFile).
 *
 * Emit only: the type check is `npm run typecheck` (CI runs it), so a build takes seconds. dist/ is made afresh each
 * time, so nothing removed from src/ lingers in it. dist/build.json, written last, says when the build began:
 * bin/voucher-sync.mjs runs dist/ only while no input is newer than that (else the sources, through tsx).
 */
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const at = (path) => `${root}${path}`;

/** Where the bundle reads the query compiler's WebAssembly, under dist/. */
const QUERY_COMPILER_FILE = 'prisma/query-compiler.wasm';
const QUERY_COMPILER_MODULE = '@prisma/client/runtime/query_compiler_fast_bg.postgresql.wasm-base64.mjs';

/**
 * Loaded by path at run time, so left to node_modules: pino's transports start worker threads from their own files
 * (the service logs through a stream, but pino keeps the code that would), and the optional native decoder of
 * msgpackr, which BullMQ falls back from when it is missing.
 */
const EXTERNAL = ['thread-stream', 'msgpackr-extract'];

/**
 * The query compiler's module becomes one that reads the WebAssembly from dist/ (written by the build). Its `wasm` is
 * then a Buffer, not base64 text: the generated client passes it to `Buffer.from(wasm, 'base64')`, which copies a
 * Buffer as it is (the encoding applies to strings only), and compiles the copy.
 */
const prismaQueryCompilerFromFile = {
  name: 'prisma-query-compiler-from-file',
  setup(builder) {
    builder.onResolve({ filter: /query_compiler_fast_bg\.postgresql\.wasm-base64\.mjs$/ }, (args) => ({
      path: args.path,
      namespace: 'query-compiler',
    }));
    builder.onLoad({ filter: /.*/, namespace: 'query-compiler' }, () => ({
      contents: [
        "import { readFileSync } from 'node:fs';",
        "import { atPackageRoot } from './src/package-root.ts';",
        `export const wasm = readFileSync(atPackageRoot(...${JSON.stringify(QUERY_COMPILER_FILE.split('/'))}));`,
      ].join('\n'),
      resolveDir: root,
      loader: 'ts',
    }));
  },
};

// Taken before anything is read: a file saved while the build runs counts as newer than the build.
const startedAtMs = Date.now();
rmSync(at('dist'), { recursive: true, force: true });
const { metafile } = await build({
  entryPoints: { 'src/cli/main': at('src/cli/main.ts') },
  outdir: at('dist'),
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  // The CommonJS packages inside call require(): in an ES module it has to be made.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
  plugins: [prismaQueryCompilerFromFile],
  // Stack traces name the sources' files and lines.
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
});
// What the bundle holds and what it imports from outside itself at run time: test/deploy/image.test.ts checks that
// the image installs the latter and that the former has no development tool in it.
const packageOf = (path) => /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)?.[1];
const contents = {
  packages: [...new Set(Object.keys(metafile.inputs).map(packageOf).filter(Boolean))].sort(),
  externals: [
    ...new Set(
      Object.values(metafile.outputs).flatMap((output) => output.imports.filter((i) => i.external).map((i) => i.path)),
    ),
  ].sort(),
};
const { wasm } = await import(import.meta.resolve(QUERY_COMPILER_MODULE));
mkdirSync(at('dist/prisma'), { recursive: true });
writeFileSync(at(`dist/${QUERY_COMPILER_FILE}`), Buffer.from(wasm, 'base64'));
cpSync(at('src/server/page'), at('dist/src/server/page'), { recursive: true });
cpSync(at('prisma/migrations'), at('dist/prisma/migrations'), { recursive: true });
cpSync(at('package.json'), at('dist/package.json'));
writeFileSync(at('dist/bundle.json'), `${JSON.stringify(contents, null, 2)}\n`);
writeFileSync(at('dist/build.json'), `${JSON.stringify({ startedAtMs })}\n`);
