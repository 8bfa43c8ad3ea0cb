import type { FakeCareCloud } from '../../src/fake/carecloud.ts';
import type { FakeCin7 } from '../../src/fake/cin7.ts';

/** What a test looks at in an answer: status, headers, the raw text and the JSON when it parses. */
export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests poke into arbitrary bodies
}

async function answer(response: Response): Promise<Answer> {
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

const queryString = (query: Record<string, string | number | boolean | string[]> = {}) => {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    for (const item of Array.isArray(value) ? value : [value]) params.append(key, String(item));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
};

export async function careCloudLogin(fake: FakeCareCloud, body?: Record<string, unknown>): Promise<Answer> {
  const { login, password, appId } = fake.credentials;
  return answer(
    await fetch(`${fake.url}/users/actions/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body ?? { user_external_application_id: appId, login, password }),
    }),
  );
}

/** A logged-in CareCloud caller. */
export async function careCloudClient(fake: FakeCareCloud) {
  let token = (await careCloudLogin(fake)).json.data.bearer_token as string;
  const get = async (path: string, query?: Record<string, string | number | boolean | string[]>, init?: RequestInit) =>
    answer(
      await fetch(`${fake.url}${path}${queryString(query)}`, {
        ...init,
        headers: { authorization: `Bearer ${token}` },
      }),
    );
  return {
    get,
    relogin: async () => {
      token = (await careCloudLogin(fake)).json.data.bearer_token as string;
    },
    /** Every voucher of a listing, page by page. */
    async pageAll(query: Record<string, string | number | boolean | string[]>, count = 100) {
      const vouchers: Array<Record<string, unknown>> = [];
      for (let offset = 0; ; offset += count) {
        const page = await get('/vouchers', { ...query, count, offset });
        if (page.status !== 200) throw new Error(`status ${page.status}: ${page.text}`);
        vouchers.push(...page.json.data.vouchers);
        if (page.json.data.vouchers.length < count) return vouchers;
      }
    },
  };
}

export function cin7Client(fake: FakeCin7, credentials = fake.credentials) {
  const authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.apiKey}`).toString('base64')}`;
  const get = async (query?: Record<string, string | number>, init?: RequestInit) =>
    answer(await fetch(`${fake.url}/v1/Voucher${queryString(query)}`, { ...init, headers: { authorization } }));
  return {
    get,
    async pageAll(query: Record<string, string | number>, rows = 250) {
      const vouchers: Array<Record<string, unknown>> = [];
      for (let page = 1; ; page++) {
        const answer = await get({ ...query, rows, page });
        if (answer.status !== 200) throw new Error(`status ${answer.status}: ${answer.text}`);
        vouchers.push(...answer.json);
        if (answer.json.length < rows) return vouchers;
      }
    },
  };
}
