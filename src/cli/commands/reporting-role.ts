/**
 * voucher-sync db:reporting-role (npm run db:reporting-role)
 *
 * Creates (or updates) the read-only role BI tools connect as: it reads the views of schema `reporting` and
 * nothing else. Reads REPORTING_ROLE (default voucher_sync_reporting), REPORTING_PASSWORD (required, never
 * printed) and DATABASE_URL, whose user must be allowed to create roles (CREATEROLE) and own schema
 * `reporting` (the user that runs the migrations). Safe to run again: the password is reset to the current value.
 */
import type { Command } from 'commander';
import { z } from 'zod';
import { loadConfig, loadDotEnv } from '../../config.ts';
import { describeDatabaseUrl, hidePassword } from '../../db/database-url.ts';
import { ensureReportingRole, revokeConnectStatements } from '../../db/reporting-role.ts';
import { ConfigError } from '../../errors.ts';
import { act } from '../command-kit.ts';

export const DEFAULT_REPORTING_ROLE = 'voucher_sync_reporting';

// These two variables matter to this command only, so they are read here rather than in src/config.ts,
// with the same conventions: empty means unset, one line per problem, never a secret value.
const schema = z.object({
  REPORTING_ROLE: z
    .string()
    .trim()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be 1 to 63 lowercase letters, digits or _, not starting with a digit')
    .refine((name) => !name.startsWith('pg_'), 'must not start with pg_ (reserved by PostgreSQL)')
    .default(DEFAULT_REPORTING_ROLE),
  REPORTING_PASSWORD: z
    .string({ message: 'must be set: it is the password BI tools will connect with' })
    .min(8, 'must be at least 8 characters'),
});

function readSettings(env: Record<string, string | undefined>) {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== ''));
  const problems: string[] = [];
  let databaseUrl: string | undefined;
  try {
    databaseUrl = loadConfig({ DATABASE_URL: cleaned.DATABASE_URL }).databaseUrl.reveal();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.message.split('\n'));
  }
  const parsed = schema.safeParse({
    REPORTING_ROLE: cleaned.REPORTING_ROLE,
    REPORTING_PASSWORD: cleaned.REPORTING_PASSWORD,
  });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0]);
      problems.push(
        `${name} ${issue.message}${name === 'REPORTING_ROLE' ? ` (got ${JSON.stringify(cleaned[name])})` : ''}`,
      );
    }
  }
  if (problems.length > 0 || !parsed.success || databaseUrl === undefined) throw new ConfigError(problems.join('\n'));
  return { databaseUrl, role: parsed.data.REPORTING_ROLE, password: parsed.data.REPORTING_PASSWORD };
}

/**
 * Other databases the role can still connect to: this command cannot revoke PUBLIC's CONNECT there (the owners
 * can, and it changes what every other role may do), so it says what to run.
 */
function otherDatabasesAdvice(role: string, databases: string[]): string[] {
  if (databases.length === 0) return [];
  return [
    `Note: PUBLIC has CONNECT on ${databases.length === 1 ? 'database' : 'databases'} ${databases.join(', ')}, so ${role} can connect there too and ` +
      "read their system catalogs (names of tables and roles, not their rows). To stop that, each database's owner runs:",
    ...revokeConnectStatements(databases).map((statement) => `  ${statement}`),
    '  (then GRANT CONNECT to the roles that need it), or pg_hba.conf lets the role log in to this database only.',
  ];
}

export function register(program: Command): void {
  program
    .command('db:reporting-role')
    .description(
      'create or update the read-only role for BI tools: REPORTING_ROLE (default voucher_sync_reporting), REPORTING_PASSWORD (required, never printed)',
    )
    .action(act(reportingRole));
}

async function reportingRole(): Promise<number> {
  loadDotEnv();
  const { databaseUrl, role, password } = readSettings(process.env);
  const where = describeDatabaseUrl(databaseUrl);
  let result;
  try {
    result = await ensureReportingRole(databaseUrl, { role, password });
  } catch (error) {
    // Only the message, with the database password and the role's password taken out of it.
    const message = error instanceof Error ? error.message : String(error);
    console.error(
      `Could not set up the reporting role in ${where}: ${hidePassword(message, databaseUrl).split(password).join('[redacted]')}`,
    );
    return 1;
  }
  const views = result.views.length > 0 ? result.views.join(', ') : 'no view yet';
  console.log(
    [
      `${result.created ? 'Created' : 'Updated'} role ${role} in ${where}; its password is REPORTING_PASSWORD.`,
      `It can read ${views}, and the views later migrations add to schema reporting; nothing else.`,
      ...(result.revokedPublicCreate
        ? ['Revoked CREATE on schema public from PUBLIC, as PostgreSQL 15 does for new databases.']
        : []),
      ...otherDatabasesAdvice(role, result.otherDatabases),
    ].join('\n'),
  );
  return 0;
}
