// SQL of tus's upload info for local storage (table tus_uploads, server/db/open.ts), beside repo.ts:
// the KvStore @tus/file-store reads and writes as its `configstore`. The value is the JSON tus
// itself would write to `<id>.json`, so a sidecar from an older data dir is imported as it is.
//
// It writes on the server's SQLite connection without the repository's transaction gate
// (sqlite-repository.ts), so a statement here run while another request's transaction is open
// would become part of it, and go if that transaction rolls back. That cannot happen today because
// transactions do no I/O, so each one begins and ends within one turn of the event loop, and every
// call here follows the store's own file I/O, so it runs in a turn of its own. A transaction that
// awaits I/O, or a call here made straight after a repository call, breaks that: route these
// statements through the gate first.
import type { KvStore, Upload } from '@tus/utils';
import type { Db } from './open.ts';

export class TusInfoRepo implements KvStore<Upload> {
  readonly #s;

  constructor(db: Db) {
    this.#s = {
      get: db.prepare<[string], { info: string }>('SELECT info FROM tus_uploads WHERE id = ?'),
      set: db.prepare<[string, string]>('INSERT INTO tus_uploads (id, info) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET info = excluded.info'),
      insertIfAbsent: db.prepare<[string, string]>('INSERT INTO tus_uploads (id, info) VALUES (?, ?) ON CONFLICT (id) DO NOTHING'),
      delete: db.prepare<[string]>('DELETE FROM tus_uploads WHERE id = ?'),
      ids: db.prepare<[], { id: string }>('SELECT id FROM tus_uploads ORDER BY id'),
    };
  }

  async get(id: string): Promise<Upload | undefined> {
    return this.read(id);
  }

  async set(id: string, upload: Upload): Promise<void> {
    this.#s.set.run(id, JSON.stringify(upload));
  }

  async delete(id: string): Promise<void> {
    this.remove(id);
  }

  async list(): Promise<string[]> {
    return this.ids();
  }

  /** The info, or undefined when there is none (or it is not JSON, as tus's own store treats it). */
  read(id: string): Upload | undefined {
    const row = this.#s.get.get(id);
    if (!row) return undefined;
    try {
      return JSON.parse(row.info) as Upload;
    } catch {
      return undefined;
    }
  }

  has(id: string): boolean {
    return this.#s.get.get(id) !== undefined;
  }

  remove(id: string): void {
    this.#s.delete.run(id);
  }

  ids(): string[] {
    return this.#s.ids.all().map((r) => r.id);
  }

  /** Keeps `json` (a sidecar's text) unless the upload already has a row, which is newer. */
  importJson(id: string, json: string): void {
    this.#s.insertIfAbsent.run(id, json);
  }
}
