// SQL of tus's upload info for local storage (table tus_uploads, server/db/open.ts), beside repo.ts:
// the KvStore @tus/file-store reads and writes as its `configstore`. The value is the JSON tus
// itself would write to `<id>.json`, so a sidecar from an older data dir is imported as it is.
//
// Its statements go through the connection's gate (sqlite-gate.ts) like the repository's: one run
// while another request's transaction is open would otherwise become part of it, and be lost with
// it on rollback (an upload without its info cannot be resumed).
import type { KvStore, Upload } from '@tus/utils';
import type { Db } from './open.ts';
import { gateOf, type SqliteGate } from './sqlite-gate.ts';

export class TusInfoRepo implements KvStore<Upload> {
  readonly #s;
  readonly #gate: SqliteGate;

  constructor(db: Db) {
    this.#gate = gateOf(db);
    this.#s = {
      get: db.prepare<[string], { info: string }>('SELECT info FROM tus_uploads WHERE id = ?'),
      set: db.prepare<[string, string]>('INSERT INTO tus_uploads (id, info) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET info = excluded.info'),
      insertIfAbsent: db.prepare<[string, string]>('INSERT INTO tus_uploads (id, info) VALUES (?, ?) ON CONFLICT (id) DO NOTHING'),
      delete: db.prepare<[string]>('DELETE FROM tus_uploads WHERE id = ?'),
      ids: db.prepare<[], { id: string }>('SELECT id FROM tus_uploads ORDER BY id'),
    };
  }

  /** The info, or undefined when there is none (or it is not JSON, as tus's own store treats it). */
  get(id: string): Promise<Upload | undefined> {
    return this.#gate.outside(() => {
      const row = this.#s.get.get(id);
      if (!row) return undefined;
      try {
        return JSON.parse(row.info) as Upload;
      } catch {
        return undefined;
      }
    });
  }

  set(id: string, upload: Upload): Promise<void> {
    return this.#gate.outside(() => void this.#s.set.run(id, JSON.stringify(upload)));
  }

  delete(id: string): Promise<void> {
    return this.#gate.outside(() => void this.#s.delete.run(id));
  }

  list(): Promise<string[]> {
    return this.#gate.outside(() => this.#s.ids.all().map((r) => r.id));
  }

  has(id: string): Promise<boolean> {
    return this.#gate.outside(() => this.#s.get.get(id) !== undefined);
  }

  /** Keeps `json` (a sidecar's text) unless the upload already has a row, which is newer. */
  importJson(id: string, json: string): Promise<void> {
    return this.#gate.outside(() => void this.#s.insertIfAbsent.run(id, json));
  }
}
