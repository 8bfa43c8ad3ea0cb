import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';

const repoRoot = path.resolve(import.meta.dirname, '../..');
/** The team's copy of the official description, beside the checkout; CARECLOUD_OPENAPI names another. */
export const SPEC_PATH = path.resolve(
  repoRoot,
  process.env.CARECLOUD_OPENAPI ?? '../shared/api/carecloud-openapi.yaml',
);

type Node = Record<string, unknown>;

/** OpenAPI 3.0's `nullable: true` is JSON Schema's `type: [t, 'null']` (and null among the enum values). */
function convertNullable(node: unknown): void {
  if (Array.isArray(node)) {
    node.forEach(convertNullable);
    return;
  }
  if (typeof node !== 'object' || node === null) return;
  const schema = node as Node;
  if (schema.nullable === true) {
    if (typeof schema.type === 'string') schema.type = [schema.type, 'null'];
    if (Array.isArray(schema.enum)) schema.enum = [...schema.enum, null];
    delete schema.nullable;
  }
  Object.values(schema).forEach(convertNullable);
}

const pointer = (...parts: string[]) =>
  `#/${parts.map((p) => encodeURIComponent(p.replaceAll('~', '~0').replaceAll('/', '~1'))).join('/')}`;

/** Validates response bodies against the CareCloud OpenAPI description shared with the other engineers. */
export function createSpecValidator() {
  const doc = parse(readFileSync(SPEC_PATH, 'utf8')) as Node;
  convertNullable(doc);
  const ajv = new Ajv({ strict: false, validateFormats: false, validateSchema: false, allErrors: true });
  ajv.addSchema(doc, 'spec');
  const paths = doc.paths as Record<string, Record<string, { responses: Record<string, Node> }>>;

  return {
    /** Errors of `body` as the JSON answer of `method path` with `status`; throws if the spec has none. */
    errors(pathName: string, method: string, status: number, body: unknown): string[] {
      const response = paths[pathName]?.[method]?.responses[String(status)];
      if (!response) throw new Error(`the spec has no ${status} answer for ${method} ${pathName}`);
      const ref = typeof response.$ref === 'string' ? response.$ref : undefined;
      const location = ref ?? pointer('paths', pathName, method, 'responses', String(status));
      const validate = ajv.getSchema(`spec${location}${pointer('content', 'application/json', 'schema').slice(1)}`);
      if (!validate) throw new Error(`no JSON schema for ${status} of ${method} ${pathName}`);
      return validate(body) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''}`);
    },
  };
}
