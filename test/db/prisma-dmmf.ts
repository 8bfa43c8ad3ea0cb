/**
 * Parses a Prisma schema with Prisma's own parser: the prisma-schema WebAssembly module that ships inside
 * the installed `prisma` CLI (node_modules/prisma/build). No package exposes it here (@prisma/internals is
 * not installed), so this file supplies the four host functions wasm-bindgen expects and calls `get_dmmf`.
 * If a Prisma upgrade changes that interface, the schema-agreement test fails loudly here.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export interface DmmfField {
  name: string;
  dbName?: string | null;
  kind: string;
  type: string;
  isRequired: boolean;
  isList: boolean;
  isId: boolean;
  hasDefaultValue: boolean;
  default?: unknown;
  nativeType?: [string, string[]] | null;
}

export interface DmmfModel {
  name: string;
  dbName: string | null;
  fields: DmmfField[];
}

export interface DmmfIndex {
  model: string;
  type: 'id' | 'unique' | 'normal' | 'fulltext';
  dbName?: string | null;
  fields: { name: string; sortOrder?: 'asc' | 'desc' }[];
}

export interface Dmmf {
  datamodel: { models: DmmfModel[]; indexes: DmmfIndex[] };
}

// The project compiles without the DOM library, where TypeScript declares WebAssembly: the little used
// here is declared by hand.
interface WasmTable {
  get(index: number): unknown;
  set(index: number, value: unknown): void;
  grow(delta: number): number;
}
interface WasmModuleApi {
  Module: { new (bytes: Uint8Array): object; imports(module: object): { module: string; name: string }[] };
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: unknown };
}
const { Module, Instance } = (globalThis as unknown as { WebAssembly: WasmModuleApi }).WebAssembly;

interface SchemaWasm {
  memory: { buffer: ArrayBuffer };
  __wbindgen_externrefs: WasmTable;
  __wbindgen_start(): void;
  __wbindgen_malloc(size: number, align: number): number;
  __wbindgen_free(pointer: number, size: number, align: number): void;
  get_dmmf(pointer: number, length: number): [number, number, number, number];
}

export function getDmmf(schema: string): Dmmf {
  const wasm = loadSchemaWasm();
  const input = new TextEncoder().encode(JSON.stringify({ prismaSchema: [['schema.prisma', schema]] }));
  const pointer = wasm.__wbindgen_malloc(input.length, 1);
  new Uint8Array(wasm.memory.buffer, pointer, input.length).set(input);
  const [outPointer, outLength, errorRef, failed] = wasm.get_dmmf(pointer, input.length);
  if (failed) throw wasm.__wbindgen_externrefs.get(errorRef) as Error;
  const text = new TextDecoder().decode(new Uint8Array(wasm.memory.buffer, outPointer, outLength));
  wasm.__wbindgen_free(outPointer, outLength, 1);
  return JSON.parse(text) as Dmmf;
}

function loadSchemaWasm(): SchemaWasm {
  const prismaPackage = createRequire(import.meta.url).resolve('prisma/package.json');
  const module = new Module(readFileSync(join(dirname(prismaPackage), 'build', 'prisma_schema_build_bg.wasm')));
  // The host functions run during instantiation and later, once the instance's exports exist.
  const instance: { exports?: SchemaWasm } = {};
  const text = (pointer: number, length: number) =>
    new TextDecoder().decode(new Uint8Array(instance.exports!.memory.buffer, pointer, length));
  // wasm-bindgen suffixes import names with a hash that changes between builds: match them by prefix.
  const host: Record<string, (...args: number[]) => unknown> = {
    __wbg_Error_: (pointer, length) => new Error(text(pointer!, length!)),
    __wbg___wbindgen_throw_: (pointer, length) => {
      throw new Error(text(pointer!, length!));
    },
    __wbg_set_message_: () => undefined,
    __wbindgen_init_externref_table: () => {
      const table = instance.exports!.__wbindgen_externrefs;
      const base = table.grow(4);
      for (const [offset, value] of [undefined, null, true, false].entries()) table.set(base + offset, value);
      table.set(0, undefined);
    },
  };
  const imports: Record<string, Record<string, unknown>> = {};
  for (const wanted of Module.imports(module)) {
    const prefix = Object.keys(host).find((p) => wanted.name.startsWith(p));
    if (!prefix) throw new Error(`prisma-schema wasm wants an unknown import ${wanted.module}.${wanted.name}`);
    (imports[wanted.module] ??= {})[wanted.name] = host[prefix];
  }
  instance.exports = new Instance(module, imports).exports as SchemaWasm;
  instance.exports.__wbindgen_start();
  return instance.exports;
}
