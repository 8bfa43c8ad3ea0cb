/**
 * `COPY … FROM STDIN` over a pg.Client, without pg-copy-streams (not a dependency of the project).
 *
 * pg accepts any "submittable" object in `client.query()` and hands it the protocol messages of its query;
 * pg's Connection already has the three messages COPY needs (CopyData, CopyDone, CopyFail). This sends a
 * whole payload at once, which is all the bench needs (a page is a few hundred kB).
 */
import type pg from 'pg';

/** The part of pg's (untyped) Connection that a COPY uses. */
interface CopyConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

class CopyFromQuery implements pg.Submittable {
  rowCount = 0;
  private failed = false;
  readonly done: Promise<number>;
  private resolve!: (rows: number) => void;
  private reject!: (error: Error) => void;

  constructor(
    private readonly text: string,
    private readonly payload: Buffer,
  ) {
    this.done = new Promise<number>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  submit(connection: pg.Connection): void {
    (connection as unknown as CopyConnection).query(this.text);
  }

  handleCopyInResponse(connection: CopyConnection): void {
    if (this.payload.length > 0) connection.sendCopyFromChunk(this.payload);
    connection.endCopyFrom();
  }

  handleCommandComplete(message: { text: string }): void {
    this.rowCount = Number(/(\d+)$/.exec(message.text)?.[1] ?? 0);
  }

  // pg clears the active query before calling this, and does not call handleReadyForQuery afterwards.
  handleError(error: Error): void {
    this.failed = true;
    this.reject(error);
  }

  handleReadyForQuery(): void {
    if (!this.failed) this.resolve(this.rowCount);
  }

  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
}

/** Runs `COPY table (…) FROM STDIN` with `payload` in COPY text format; resolves with the rows copied. */
export function copyFrom(client: pg.Client, copyStatement: string, payload: string): Promise<number> {
  const query = new CopyFromQuery(copyStatement, Buffer.from(payload, 'utf8'));
  client.query(query);
  return query.done;
}

/** One field of COPY's text format: `\N` for null; backslash, newline, carriage return and tab escaped. */
export function copyField(value: string | null): string {
  if (value === null) return '\\N';
  return /[\\\n\r\t]/.test(value) ? value.replace(/[\\\n\r\t]/g, (c) => COPY_ESCAPES[c]!) : value;
}

const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
