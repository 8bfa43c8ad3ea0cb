/**
 * `voucher-sync backfill`'s dates, as an operator types them: every bad one is one line and exit 2, before anything
 * is looked at; a good one is printed as the range understood, in UTC.
 */
import { describe, expect, it } from 'vitest';
import { runCommand, type CommandOutcome } from '../helpers/run-command.ts';

const CLI = 'src/cli/main.ts';
const lines = (text: string) => text.trim().split('\n');

describe('voucher-sync backfill --from --to', () => {
  it('exits 2 with one line naming what was wrong on every bad argument', async () => {
    // Every rule is in test/unit/backfill-range.test.ts; here, that each reaches the operator as one line and exit 2.
    const cases: [string[], string][] = [
      [['--from', '2026-11-10', '--to', '2026-11-01'], '--from (2026-11-10T00:00:00Z) must be before --to'],
      [['--from', 'yesterday', '--to', '2026-11-01'], '--from: "yesterday" is not a date'],
      [['--from', '2099-01-01', '--to', '2099-02-01'], 'the range starts in the future'],
    ];
    const outcomes: CommandOutcome[] = [];
    for (const [args] of cases) outcomes.push(await runCommand(CLI, ['backfill', '--source', 'cin7', ...args], {}));
    cases.forEach(([args, message], i) => {
      const outcome = outcomes[i]!;
      expect(outcome.code, args.join(' ')).toBe(2);
      expect(outcome.stdout, args.join(' ')).toBe('');
      expect(lines(outcome.stderr), args.join(' ')).toHaveLength(1);
      expect(outcome.stderr, args.join(' ')).toContain(message);
    });
  }, 60_000);

  it('prints the range it understood in UTC, from a date in a zone', async () => {
    // Bad credentials-free config: the range is printed before anything else is looked at.
    const outcome = await runCommand(
      CLI,
      [
        'backfill',
        '--source',
        'cin7',
        '--from',
        '2026-07-01',
        '--to',
        '2026-07-01T12:00:00+02:00',
        '--zone',
        'Europe/Prague',
      ],
      { DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/none', REDIS_URL: 'redis://127.0.0.1:6379' },
    );
    expect(lines(outcome.stdout)[0]).toBe(
      'range: 2026-06-30T22:00:00Z to 2026-07-01T10:00:00Z (UTC, --to exclusive; 12 h)',
    );
    expect(outcome.stderr).toContain('cin7 is not configured');
    expect(outcome.code).toBe(1);
  });
});
