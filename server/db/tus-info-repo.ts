// SQL of tus's upload info for local storage (table tus_uploads, server/db/open.ts), beside repo.ts:
// the KvStore @tus/file-store reads and writes as its `configstore`. The value is the JSON tus
// itself would write to `<id>.json`, so a sidecar from an older data dir is imported as it is.
//
// Its statements go through the connection's gate (sqlite-gate.ts) like the repository's: one run
// while another request's transaction is open would otherwise become part of it, and be lost with
// it on rollback (an upload without its info cannot be resumed).
//
// The info of a finished upload goes with forget(): deleted a moment later, together with the
// others forgotten meanwhile, in one transaction (a commit of its own per finish was among the
// largest costs of a small upload, bench/README.md). Until then this repository reads it as gone.
// A crash first leaves rows without an upload, which the start-up repair removes as orphans.
import type { KvStore, Upload } from '@tus/utils';
import type { Db } from './open.ts';
import { gateOf, type SqliteGate } from './sqlite-gate.ts';

export class TusInfoRepo implements KvStore<Upload> {
  readonly #s;
  readonly #gate: SqliteGate;
  /** Ids forgotten and not yet deleted. */
  #forgotten = new Set<string>();
  #deleting = false;
  readonly #deleteAll: (ids: readonly string[]) => void;

  constructor(db: Db) {
    this.#gate = gateOf(db);
    this.#s = {
      get: db.prepare<[string], { info: string }>('SELECT info FROM tus_uploads WHERE id = ?'),
      set: db.prepare<[string, string]>('INSERT INTO tus_uploads (id, info) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET info = excluded.info'),
      insertIfAbsent: db.prepare<[string, string]>('INSERT INTO tus_uploads (id, info) VALUES (?, ?) ON CONFLICT (id) DO NOTHING'),
      delete: db.prepare<[string]>('DELETE FROM tus_uploads WHERE id = ?'),
      ids: db.prepare<[], { id: string }>('SELECT id FROM tus_uploads ORDER BY id'),
    };
    this.#deleteAll = db.transaction((ids: readonly string[]) => {
      for (const id of ids) this.#s.delete.run(id);
    });
  }

  /** The info, or undefined when there is none (or it is not JSON, as tus's own store treats it). */
  get(id: string): Promise<Upload | undefined> {
    return this.#gate.outside(() => {
      if (this.#forgotten.has(id)) return undefined;
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
    return this.#gate.outside(() => {
      this.#s.set.run(id, JSON.stringify(upload));
      this.#forgotten.delete(id);
    });
  }

  delete(id: string): Promise<void> {
    return this.#gate.outside(() => void this.#s.delete.run(id));
  }

  /** A finished upload's info: gone for every read at once, deleted with the next batch. */
  forget(id: string): void {
    this.#forgotten.add(id);
    if (this.#deleting) return;
    this.#deleting = true;
    setImmediate(() => void this.#deleteForgotten());
  }

  async #deleteForgotten(): Promise<void> {
    await this.#gate
      .outside(() => {
        this.#deleting = false; // what is forgotten from now on goes with the next batch
        const ids = [...this.#forgotten];
        this.#deleteAll(ids);
        for (const id of ids) this.#forgotten.delete(id);
      })
      // Kept as forgotten (still read as gone); deleted with the next batch, or at the next start.
      .catch(() => void (this.#deleting = false));
  }

  list(): Promise<string[]> {
    return this.#gate.outside(() => this.#s.ids.all().map((r) => r.id).filter((id) => !this.#forgotten.has(id)));
  }

  has(id: string): Promise<boolean> {
    return this.#gate.outside(() => !this.#forgotten.has(id) && this.#s.get.get(id) !== undefined);
  }

  /** Keeps `json` (a sidecar's text) unless the upload already has a row, which is newer. */
  importJson(id: string, json: string): Promise<void> {
    return this.#gate.outside(() => void this.#s.insertIfAbsent.run(id, json));
  }
}
