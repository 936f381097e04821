// What several instances on one PostgreSQL know of each other: who runs (a heartbeat per instance)
// and who is deleting which file, so a restarting instance's repair leaves a live one's work alone.
import type { InstanceRegistry } from '../contract.ts';
import type { Sql } from './sql.ts';

/** Rows of instances not seen for this long are dropped (killed instances leave theirs). */
const FORGET_AFTER_MS = 7 * 86_400_000;

export function createPgInstances(sql: Sql): InstanceRegistry {
  return {
    async beat(id, now) {
      await sql.run(
        `INSERT INTO instances (id, started_at, seen_at) VALUES ($1, $2, $2)
         ON CONFLICT (id) DO UPDATE SET seen_at = greatest(instances.seen_at, excluded.seen_at)`,
        [id, now],
      );
      await sql.run('DELETE FROM instances WHERE seen_at < $1', [now - FORGET_AFTER_MS]);
    },
    async seenSince(self, since) {
      const rows = await sql.rows<{ id: string }>('SELECT id FROM instances WHERE id <> $1 AND seen_at >= $2', [self, since]);
      return new Set(rows.map((r) => r.id));
    },
    leave: async (id) => void (await sql.run('DELETE FROM instances WHERE id = $1', [id])),
  };
}

export function pgMarkDeleting(sql: Sql, key: string, instanceId: string): Promise<void> {
  return sql.tx(async (tx) => {
    await tx.run("UPDATE files SET state = 'deleting' WHERE key = $1", [key]);
    await tx.run(
      `INSERT INTO file_deletions (key, instance_id) SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM files WHERE key = $1)
       ON CONFLICT (key) DO UPDATE SET instance_id = excluded.instance_id`,
      [key, instanceId],
    );
  });
}

export async function pgTakeOverDeletion(sql: Sql, key: string, instanceId: string, previous: string | null): Promise<boolean> {
  // One winner either way: the primary key refuses a second insert, and an update re-checks the
  // owner once the first one's row lock is released.
  if (previous === null) {
    return (await sql.run(
      `INSERT INTO file_deletions (key, instance_id) SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM files WHERE key = $1 AND state = 'deleting')
       ON CONFLICT (key) DO NOTHING`,
      [key, instanceId])) === 1;
  }
  return (await sql.run('UPDATE file_deletions SET instance_id = $2 WHERE key = $1 AND instance_id = $3', [key, instanceId, previous])) === 1;
}

export async function pgDeletionOwners(sql: Sql): Promise<Map<string, string>> {
  const rows = await sql.rows<{ key: string; instance_id: string }>('SELECT key, instance_id FROM file_deletions');
  return new Map(rows.map((r) => [r.key, r.instance_id]));
}
