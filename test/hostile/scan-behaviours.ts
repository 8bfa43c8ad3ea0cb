/**
 * Hostile behaviours that attack the scans (issue #9, items 1, 6 and 8): a total that lies, a paging
 * parameter or a filter the server ignores, pages too large to hold. Each is a Behaviour for the hostile
 * proxy (./hostile-server.ts); what a request asked for is read from its query.
 */
import { withJson, type Behaviour, type HostileRequest } from './hostile-server.ts';

const isList = (request: HostileRequest, path: RegExp) => request.method === 'GET' && path.test(request.path);
const CARECLOUD_LIST = /\/vouchers$/;
const CIN7_LIST = /\/v1\/Voucher$/;

type CareCloudPage = { data: { vouchers: unknown[]; total_items?: number } };

/** CareCloud reports `total_items` as `total` whatever the list holds. */
export const lyingTotal =
  (total: number): Behaviour =>
  async ({ request, forward }) => {
    const answer = await forward();
    if (!isList(request, CARECLOUD_LIST) || answer.status !== 200) return answer;
    const page = answer.json as CareCloudPage;
    return withJson(answer, { ...page, data: { ...page.data, total_items: total } });
  };

/** CareCloud answers every list request as if it asked for offset 0, and sends no `total_items`. */
export const ignoringOffset: Behaviour = async ({ request, forward }) => {
  if (!isList(request, CARECLOUD_LIST)) return forward();
  const query = new URLSearchParams(request.query);
  query.set('offset', '0');
  const answer = await forward({ query });
  if (answer.status !== 200) return answer;
  const { total_items: _dropped, ...data } = (answer.json as CareCloudPage).data;
  return withJson(answer, { data });
};

/** Cin7 answers every list request as if it had no `where` clause. */
export const ignoringWhere: Behaviour = ({ request, forward }) => {
  if (!isList(request, CIN7_LIST)) return forward();
  const query = new URLSearchParams(request.query);
  query.delete('where');
  return forward({ query });
};

/**
 * Any list request asking for more than `max` records (CareCloud `count`, Cin7 `rows`) is answered with a
 * valid JSON body of `bytes` bytes (mostly spaces): a page far larger than the client may hold.
 */
export const hugeAbove =
  (max: number, bytes = 2 * 1024 ** 2): Behaviour =>
  async ({ request, forward }) => {
    const carecloud = isList(request, CARECLOUD_LIST);
    if (!carecloud && !isList(request, CIN7_LIST)) return forward();
    const asked = Number(request.query.get(carecloud ? 'count' : 'rows'));
    const answer = await forward();
    if (!(asked > max) || answer.status !== 200) return answer;
    const body = Buffer.concat([
      Buffer.from(answer.body.toString('utf8').slice(0, -1)),
      Buffer.alloc(bytes, ' '),
      Buffer.from(answer.body.toString('utf8').slice(-1)),
    ]);
    return { ...answer, body };
  };

/**
 * CareCloud refusing every list request for more than `max` records (0: any) with a 400 of its own shape, whose
 * `invalid_params` names the parameter as `name` (default `count`; the spec also allows a list of names) and explains
 * it with `message`: one that names no maximum, a wrong one, or none at all. The request is not forwarded.
 */
export const refusingCount =
  (max: number, refusal: { name?: unknown; message?: string } = {}): Behaviour =>
  async ({ request, forward }) => {
    const asked = Number(request.query.get('count'));
    if (!isList(request, CARECLOUD_LIST) || !(asked > max)) return forward();
    const param = { name: refusal.name ?? 'count', reason: 'not_allowed_value', value: String(asked) };
    const message = refusal.message ?? 'the value is not allowed';
    const json = {
      error: {
        type: 'about:blank',
        exception: 'bad_request_exception',
        title: 'Bad request',
        detail: message,
        error_data: { invalid_params: [{ ...param, message }] },
      },
    };
    return withJson({ status: 400, headers: {}, body: Buffer.alloc(0), json: undefined }, json);
  };
