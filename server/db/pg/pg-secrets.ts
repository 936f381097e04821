// Generated secrets on PostgreSQL (server/auth/secrets.ts): one JSON document in generated_secrets,
// read and written under its row lock, so instances starting at once take turns: the first
// generates, the others find its secrets and use them. An instance moving from one machine to
// several brings its DATA_DIR/secrets.json along: the database starts from it, so tokens and links
// already handed out stay valid. The values are never logged (nor are queries' parameters).
import type pg from 'pg';
import type { SecretStore, StoredSecrets } from '../../auth/secrets.ts';
import { createSql } from './sql.ts';

const NAME = 'server';

export function pgSecretStore(pool: pg.Pool, seed: () => StoredSecrets | undefined): SecretStore {
  const sql = createSql(pool);
  return {
    where: 'PostgreSQL (DATABASE_URL, table generated_secrets)',
    exists: async () => (await sql.one('SELECT 1 FROM generated_secrets WHERE name = $1', [NAME])) !== undefined,
    update: (settle) =>
      sql.tx(async (tx) => {
        // The row exists before it is locked: two first starts conflict on the insert, and the
        // second then waits on the lock of the row the first made.
        await tx.run('INSERT INTO generated_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [NAME, JSON.stringify(seed() ?? {})]);
        const row = await tx.one<{ value: string }>('SELECT value FROM generated_secrets WHERE name = $1 FOR UPDATE', [NAME]);
        const kept = JSON.parse(row!.value) as StoredSecrets;
        const changed = await settle(kept);
        if (!changed) return kept;
        await tx.run('UPDATE generated_secrets SET value = $2 WHERE name = $1', [NAME, JSON.stringify(changed)]);
        return changed;
      }),
  };
}
