/**
 * The read-only role BI tools connect as: USAGE on schema `reporting`, SELECT on its views and EXECUTE on its
 * functions (present and future), nothing else. A view runs with its owner's rights, so the role reads
 * `reporting.vouchers` without any access to the tables behind it; the functions a view calls (the masking of
 * personal data in `raw`) run with the caller's, hence EXECUTE — they are pure and read no table.
 *
 * Everything happens in one transaction that ends with a check of what the role can actually do; if any
 * other privilege reaches it (a grant to PUBLIC, say), nothing is changed and the error says what.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import pg from 'pg';

export interface ReportingRoleOptions {
  /** Role name; created when absent. */
  role: string;
  /** Set (or reset) on every call. */
  password: string;
}

export interface ReportingRoleResult {
  /** False when the role existed and only its password and privileges were brought in line. */
  created: boolean;
  database: string;
  /** `reporting.<name>` of every view the role can read now. */
  views: string[];
  /** True when PUBLIC could create objects in schema public (a database from before PostgreSQL 15) and no longer can. */
  revokedPublicCreate: boolean;
  /**
   * Other databases of the server the role can still connect to (through PUBLIC's default CONNECT), where it reads
   * their system catalogs. Only their owners can take that away: see revokeConnectStatements.
   */
  otherDatabases: string[];
}

const SCHEMA = 'reporting';
const SCRAM_ITERATIONS = 4096;

/**
 * The SCRAM-SHA-256 verifier PostgreSQL would store for `password`, so that the password itself never travels to
 * the server, where `log_statement` could write it into the server log. PostgreSQL applies SASLprep to the
 * password first, which leaves ASCII unchanged; for other passwords it returns undefined and the server hashes.
 */
export function scramVerifier(
  password: string,
  salt = randomBytes(16),
  iterations = SCRAM_ITERATIONS,
): string | undefined {
  if (!/^\p{ASCII}*$/u.test(password)) return undefined;
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** Creates or updates the reporting role in the database of `databaseUrl`. Safe to run any number of times. */
export async function ensureReportingRole(
  databaseUrl: string,
  options: ReportingRoleOptions,
): Promise<ReportingRoleResult> {
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'voucher-sync reporting-role' });
  await client.connect();
  try {
    await client.query('BEGIN');
    // Two runs at once would race between "does the role exist" and CREATE ROLE.
    await client.query("SELECT pg_advisory_xact_lock(hashtext('voucher-sync'), hashtext('reporting-role'))");
    const result = await apply(client, options);
    await verify(client, options.role);
    await client.query('COMMIT');
    return { ...result, otherDatabases: await otherDatabases(client, options.role) };
  } catch (error) {
    // The original error is what matters; a failed ROLLBACK only means the connection is already gone.
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    await client.end();
  }
}

async function apply(
  client: pg.Client,
  { role, password }: ReportingRoleOptions,
): Promise<Omit<ReportingRoleResult, 'otherDatabases'>> {
  const id = client.escapeIdentifier(role);
  const schema = await client.query<{ owner: string; database: string }>(
    'SELECT pg_get_userbyid(nspowner) AS owner, current_database() AS database FROM pg_namespace WHERE nspname = $1',
    [SCHEMA],
  );
  const { owner, database } = schema.rows[0] ?? {};
  if (owner === undefined || database === undefined)
    throw new Error(`schema ${SCHEMA} does not exist in this database: run npm run db:migrate first`);

  const created = !(await existsAsPlainRole(client, role));
  await client.query(created ? `CREATE ROLE ${id} LOGIN NOINHERIT` : `ALTER ROLE ${id} LOGIN NOINHERIT`);
  await client.query(`ALTER ROLE ${id} PASSWORD ${client.escapeLiteral(scramVerifier(password) ?? password)}`);
  // Belt and braces: even a grant given by mistake later cannot be used to write without an explicit SET.
  await client.query(`ALTER ROLE ${id} SET default_transaction_read_only = on`);

  await client.query(`GRANT CONNECT ON DATABASE ${client.escapeIdentifier(database)} TO ${id}`);
  for (const target of [
    'SCHEMA public',
    'ALL TABLES IN SCHEMA public',
    'ALL SEQUENCES IN SCHEMA public',
    'ALL FUNCTIONS IN SCHEMA public',
  ]) {
    await client.query(`REVOKE ALL ON ${target} FROM ${id}`);
  }
  const reporting = client.escapeIdentifier(SCHEMA);
  await client.query(`REVOKE ALL ON SCHEMA ${reporting} FROM ${id}`);
  await client.query(`GRANT USAGE ON SCHEMA ${reporting} TO ${id}`);
  await client.query(`REVOKE ALL ON ALL TABLES IN SCHEMA ${reporting} FROM ${id}`);
  await client.query(`GRANT SELECT ON ALL TABLES IN SCHEMA ${reporting} TO ${id}`);
  await client.query(`GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ${reporting} TO ${id}`);
  // Views and functions that later migrations add are created by the schema's owner: grant them as they appear.
  for (const grant of ['SELECT ON TABLES', 'EXECUTE ON FUNCTIONS'])
    await client.query(
      `ALTER DEFAULT PRIVILEGES FOR ROLE ${client.escapeIdentifier(owner)} IN SCHEMA ${reporting} GRANT ${grant} TO ${id}`,
    );

  // PostgreSQL 15 no longer lets PUBLIC create in schema public; a database created before keeps that right.
  const publicCreate = await client.query<{ granted: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
      WHERE n.nspname = 'public' AND a.grantee = 0 AND a.privilege_type = 'CREATE') AS granted`,
  );
  const revokedPublicCreate = publicCreate.rows[0]?.granted === true;
  if (revokedPublicCreate) await client.query('REVOKE CREATE ON SCHEMA public FROM PUBLIC');

  const views = await client.query<{ name: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('v', 'm') ORDER BY c.relname`,
    [SCHEMA],
  );
  return { created, database, views: views.rows.map((r) => r.name), revokedPublicCreate };
}

/**
 * The databases other than this one that the role may connect to. PostgreSQL gives PUBLIC CONNECT on every new
 * database, and privileges only add up: no grant here can take that away, only each database's owner can.
 */
async function otherDatabases(client: pg.Client, role: string): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT datname AS name FROM pg_database
      WHERE datallowconn AND datname <> current_database() AND has_database_privilege($1::name, oid, 'CONNECT')
      ORDER BY datname`,
    [role],
  );
  return rows.map((r) => r.name);
}

/** What an owner of each database runs so that only the roles it names can connect to it. */
export function revokeConnectStatements(databases: string[]): string[] {
  return databases.map((name) => `REVOKE CONNECT ON DATABASE ${pg.escapeIdentifier(name)} FROM PUBLIC;`);
}

/**
 * Whether the role exists already. An existing role is only taken over when it is a plain login role: turning the
 * service's own user (or any role that owns, administers or belongs to something) into a reporting role would
 * take its rights away or leave it more than read access.
 */
async function existsAsPlainRole(client: pg.Client, role: string): Promise<boolean> {
  const { rows } = await client.query<{ reasons: string[] }>(
    `SELECT array_remove(ARRAY[
        CASE WHEN r.rolname = current_user THEN 'is the user running this command' END,
        CASE WHEN r.rolsuper THEN 'is a superuser' END,
        CASE WHEN r.rolcreaterole OR r.rolcreatedb OR r.rolreplication OR r.rolbypassrls THEN 'has CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS' END,
        CASE WHEN EXISTS (SELECT 1 FROM pg_shdepend d WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = r.oid AND d.deptype = 'o')
             THEN 'owns database objects' END,
        CASE WHEN EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid) THEN 'is a member of other roles' END
      ], NULL) AS reasons
     FROM pg_roles r WHERE r.rolname = $1`,
    [role],
  );
  const found = rows[0];
  if (!found) return false;
  if (found.reasons.length > 0) {
    throw new Error(
      `role ${role} already exists and ${found.reasons.join(', ')}: it cannot become the read-only reporting role; choose another REPORTING_ROLE`,
    );
  }
  return true;
}

/** What the role can do, read back from PostgreSQL: anything beyond reading schema `reporting` is an error. */
async function verify(client: pg.Client, role: string): Promise<void> {
  const { rows } = await client.query<{ problem: string }>(
    `WITH rel AS (
       SELECT c.oid, c.relkind, n.nspname, format('%I.%I', n.nspname, c.relname) AS name
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
     )
     SELECT format('%s on %s', p.priv, rel.name) AS problem
       FROM rel CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS p(priv)
      WHERE rel.relkind <> 'S' AND NOT (rel.nspname = $2::name AND p.priv = 'SELECT')
        AND (has_table_privilege($1::name, rel.oid, p.priv)
             OR (p.priv IN ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES') AND has_any_column_privilege($1::name, rel.oid, p.priv)))
     UNION ALL
     SELECT format('%s on sequence %s', p.priv, rel.name)
       FROM rel CROSS JOIN unnest(ARRAY['USAGE', 'SELECT', 'UPDATE']) AS p(priv)
      WHERE rel.relkind = 'S' AND has_sequence_privilege($1::name, rel.oid, p.priv)
     UNION ALL
     SELECT format('CREATE in schema %I', n.nspname) FROM pg_namespace n
      WHERE n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%' AND has_schema_privilege($1::name, n.oid, 'CREATE')`,
    [role, SCHEMA],
  );
  if (rows.length === 0) return;
  const shown = rows.slice(0, 8).map((r) => r.problem);
  const more = rows.length > shown.length ? ` and ${rows.length - shown.length} more` : '';
  throw new Error(
    `role ${role} would have more than read access to schema ${SCHEMA}: it could also ${shown.join('; ')}${more}. ` +
      'These come from grants to PUBLIC or to the role itself: revoke them, then run this command again',
  );
}
