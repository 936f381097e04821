// How many upload locks a running test server holds, on either locker: @tus/server's MemoryLocker
// in the process (SQLite), or the live rows of upload_locks (PostgreSQL, server/locker/pg-locker.ts).
import type { MemoryLocker } from '@tus/server';
import { recordCount } from './records.ts';
import type { TestServer } from './server.ts';

export async function locksHeld(server: TestServer): Promise<number> {
  if (server.services.config.databaseUrl === undefined) return (server.services.locker as MemoryLocker).locks.size;
  return recordCount(server, 'SELECT count(*) FROM upload_locks WHERE expires_at > now()');
}
