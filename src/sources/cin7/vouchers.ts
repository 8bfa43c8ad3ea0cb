/**
 * Cin7 Omni `GET v1/Voucher`. Vouchers have no id and no modification time: `Code` is the key and
 * `CreatedDate` the only cursor. Incremental scans read new vouchers by CreatedDate (ascending, by value
 * rather than by page, so deletions cannot shift unread rows past us); redemptions change no timestamp,
 * so only the full scan (reconciliation) sees them, and it also finds vanished vouchers.
 *
 * A large full scan or first backfill is split into windows of CreatedDate that any worker can read, each
 * a keyset scan of `CreatedDate>='a' AND CreatedDate<'b'`: by value, so each slice is as safe against rows
 * shifting as the incremental scan, and a window is all a slice needs, since the API offers no offset. A
 * backfill of a range is planned the same way inside it (`CreatedDate` in [from, to)).
 */
import type { Cin7Config } from './config.ts';
import type { MapResult, ScanContext, StreamDefinition, VoucherRow } from '../../types.ts';
import { scanThreshold } from '../../sync/cursor.ts';
import {
  keysetScan,
  keysetStart,
  planWindows,
  type KeysetProgress,
  type KeysetWindow,
} from '../../sync/keyset-scan.ts';
import { pageScan, type PageProgress } from '../../sync/page-scan.ts';
import { parseIsoDateTime } from '../parse.ts';
import { RecordReader } from '../record-reader.ts';
import type { Cin7Client } from './client.ts';
import { createdWithin, isUtcSecond } from './where.ts';
import { utcText } from '../../sync/backfill-range.ts';

const STATUSES = ['Active', 'Inactive'] as const;

const isUpperCase = (code: number) => code >= 65 && code <= 90;

/** The API documents PascalCase names but sends camelCase: read either (a record already in camelCase is not copied). */
function camelKeys(raw: unknown): unknown {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  if (!Object.keys(raw).some((key) => isUpperCase(key.charCodeAt(0)))) return raw;
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k.charAt(0).toLowerCase() + k.slice(1), v]));
}

/** One field of a raw record, by its camelCase name, in either case (without copying the record). */
function fieldOf(record: unknown, name: string): unknown {
  if (record === null || typeof record !== 'object' || Array.isArray(record)) return undefined;
  const fields = record as Record<string, unknown>;
  return name in fields ? fields[name] : fields[name.charAt(0).toUpperCase() + name.slice(1)];
}

export function mapCin7Voucher(raw: unknown, zone: string): MapResult {
  const r = new RecordReader(camelKeys(raw));
  const status = r.oneOf('status', STATUSES);
  const row: VoucherRow = {
    sourceId: r.text('code', { required: true }) ?? '',
    code: r.text('code'),
    customerId: noCustomer(r.wholeNumber('customerID')),
    status: status === 'Inactive' ? 'inactive' : 'active',
    amount: r.amount('amount'),
    redeemedAmount: r.amount('redeemedAmount'),
    validFrom: null,
    validTo: r.isoDate('expiryDate', zone),
    appliedAt: null,
    sourceCreatedAt: r.isoDate('createdDate', zone),
    sourceModifiedAt: null,
    isDeleted: false,
    raw,
    voucherType: r.label('type'),
    description: r.label('description', null),
  };
  // Counts are checked though not stored: a record whose numbers are not numbers is not to be trusted.
  r.wholeNumber('redeemedCount');
  r.wholeNumber('redeemedCountLimit');
  return r.result(row, raw);
}

/** Cin7 sends customer 0 for a voucher that belongs to no customer: that is no customer id. */
const noCustomer = (id: string | null): string | null => (id !== null && /^-?0+$/.test(id) ? null : id);

function keyOf(record: unknown): string | undefined {
  const code = fieldOf(record, 'code');
  return typeof code === 'string' && code !== '' ? code : undefined;
}

const isUtcSecondOrNull = (value: unknown) => value === null || isUtcSecond(value);

/** A slice as planned by planSlices, checked: it comes back from a queue. */
function windowOf(slice: unknown): KeysetWindow {
  const window = slice as Partial<KeysetWindow> | null;
  if (
    window === null ||
    typeof window !== 'object' ||
    !isUtcSecondOrNull(window.from) ||
    !isUtcSecondOrNull(window.before)
  ) {
    throw new Error(
      `not a Cin7 slice (expected {from, before} of UTC seconds or null): ${JSON.stringify(slice)?.slice(0, 200)}`,
    );
  }
  return window as KeysetWindow;
}

export function createCin7Vouchers(config: Cin7Config): StreamDefinition<Cin7Client> {
  const cursorOf = (record: unknown): number | null => {
    const value = fieldOf(record, 'createdDate');
    if (typeof value !== 'string') return null;
    try {
      return Date.parse(parseIsoDateTime(value, config.timezone));
    } catch {
      return null;
    }
  };
  const order = 'CreatedDate ASC';
  /** A keyset scan of the vouchers created in [start.from, before) (see src/sync/keyset-scan.ts). */
  const byCreatedDate = (
    { client, call, logger }: ScanContext<Cin7Client>,
    start: KeysetProgress,
    before: string | null,
    confirmEnd: boolean,
  ) =>
    keysetScan({
      fetch: (request) =>
        client.listVouchers(
          { where: createdWithin(request.from, request.before), order, page: request.page, rows: request.rows },
          call,
        ),
      rows: config.pageSize,
      cursorOf,
      keyOf,
      start,
      before,
      confirmEnd,
      server: 'Cin7',
      filter: 'where',
      onUnsettled: (second, passes) =>
        logger.warn(
          { second, passes },
          'vouchers of one CreatedDate second kept changing while read; the next reconciliation reads the rest',
        ),
    });
  return {
    name: 'vouchers',
    cursorField: 'sourceCreatedAt',
    mappingKey: `timezone=${config.timezone}`,
    map: (raw) => mapCin7Voucher(raw, config.timezone),
    scan(context: ScanContext<Cin7Client>) {
      const { client, mode, watermark, lookbackMs, progress, call } = context;
      if (mode === 'full') {
        return pageScan({
          fetch: (page, rows) => client.listVouchers({ order, page, rows }, call),
          rows: config.pageSize,
          start: (progress as PageProgress | null) ?? { page: 1 },
          keyOf,
          server: 'Cin7',
        });
      }
      const from = scanThreshold(watermark, lookbackMs);
      // A page cut short ends an incremental scan (the next run reads on from its watermark): an idle run
      // stays one request.
      return byCreatedDate(
        context,
        keysetStart(progress, from ? from.toISOString().replace(/\.\d{3}Z$/, 'Z') : null),
        null,
        false,
      );
    },
    async planSlices({ client, call, range }) {
      // Windows of CreatedDate holding about `slicePages` pages each, their bounds read from the vouchers
      // themselves (one request of one row per window): vouchers bunch in time (a bulk import, a busy
      // season), so windows of equal length would give one worker most of the work. A backfill plans inside
      // its range, and a small range is one window.
      const bounds = range ? { from: utcText(range.from), before: utcText(range.to) } : null;
      const where = bounds ? createdWithin(bounds.from, bounds.before) : undefined;
      const windows = await planWindows(async (ordinal) => {
        const [first] = await client.listVouchers(
          { where, order, page: ordinal, rows: 1, fields: 'CreatedDate' },
          call,
        );
        return first === undefined ? undefined : cursorOf(first);
      }, config.pageSize * config.slicePages);
      if (!bounds) return windows;
      if (windows === null) return [bounds];
      return windows
        .map((w) => ({ from: w.from ?? bounds.from, before: w.before ?? bounds.before }))
        .filter((w) => w.from < w.before);
    },
    scanSlice(context, slice) {
      const window = windowOf(slice);
      // Like the unsliced full scan, a slice does not take a page cut short for the end of its window.
      return byCreatedDate(context, keysetStart(context.progress, window.from), window.before, true);
    },
    async lookup(client, keys, call) {
      const found: unknown[] = [];
      for (const key of keys) {
        const matches = await client.findByCode(key, call);
        found.push(...matches.filter((record) => keyOf(record) === key));
      }
      return found;
    },
  };
}
