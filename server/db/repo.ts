// SQL of uploads, files and usage on SQLite: prepared statements behind named methods. The other
// tables keep their SQL beside the code that owns them, on the same SQLite connection: the schema in
// open.ts, the virus-scan queue in scan-repo.ts, the original API's parts in legacy-parts.ts, the
// webhook outbox in outbox.ts, tus's upload info in tus-info-repo.ts. The same contract on PostgreSQL
// is in server/db/pg/; its upload locks are in server/locker/.
// Quota decisions run inside IMMEDIATE transactions: SQLite takes the write lock before reading the
// totals, so parallel creations (even from several processes on one database) can never overshoot.
// The totals are one row per user (user_usage), kept by triggers in the transactions that change
// uploads and files (server/db/open.ts): no request sums over a user's files.
import type { Db } from './open.ts';

export interface UploadRow {
  id: string;
  user_id: string;
  length: number | null;
  reserved_bytes: number;
  filename: string;
  folder: string;
  content_type: string;
  sha256_declared: string | null;
  created_at: number;
  touched_at: number;
  /** The first bytes, kept until the type is detected (hooks/content-type.ts). */
  head: Buffer | null;
  type_checked: 0 | 1;
  detected_type: string | null;
}

export type FileState = 'committing' | 'ready' | 'deleting';

export interface FileRow {
  key: string;
  user_id: string;
  upload_id: string;
  folder: string;
  filename: string;
  content_type: string;
  size: number;
  sha256: string;
  created_at: number;
  state: FileState;
  /** Detected from the first bytes; null when no signature matched. */
  detected_type: string | null;
  category: Category | null;
  /** null: recorded while scanning was off. */
  scan_status: ScanStatus | null;
  /** The signature clamd found, for 'infected'. */
  scan_signature: string | null;
  scanned_at: number | null;
  /** Set when the stored bytes were found missing or of another size (server/storage/damage.ts). */
  damage?: FileDamage | null;
  damaged_at?: number | null;
}

export type FileDamage = 'missing' | 'size_mismatch';

export type Category = 'image' | 'video' | 'audio' | 'document' | 'archive' | 'other';
export type ScanStatus = 'pending' | 'scanning' | 'clean' | 'infected' | 'error';

export interface DigestCheckpoint {
  offset: number;
  state: Buffer;
}

export interface Usage {
  used_bytes: number;
  reserved_bytes: number;
}

export interface ListQuery {
  userId: string;
  folder?: string | undefined;
  /** Exclusive position: rows strictly after (created_at, key) in newest-first order. */
  after?: { createdAt: number; key: string } | undefined;
  limit: number;
}

export class Repo {
  readonly #db: Db;
  readonly #s;

  constructor(db: Db) {
    this.#db = db;
    this.#s = {
      usage: db.prepare<[string], Usage & { uploads: number }>('SELECT used_bytes, reserved_bytes, uploads FROM user_usage WHERE user_id = ?'),
      insertUpload: db.prepare<UploadRow>(
        `INSERT INTO uploads (id, user_id, length, reserved_bytes, filename, folder, content_type,
           sha256_declared, created_at, touched_at, head, type_checked, detected_type)
         VALUES (@id, @user_id, @length, @reserved_bytes, @filename, @folder, @content_type,
           @sha256_declared, @created_at, @touched_at, @head, @type_checked, @detected_type)`,
      ),
      getUpload: db.prepare<[string], UploadRow>('SELECT * FROM uploads WHERE id = ?'),
      deleteUpload: db.prepare<[string]>('DELETE FROM uploads WHERE id = ?'),
      setReservation: db.prepare<[number, number | null, number, string]>(
        'UPDATE uploads SET reserved_bytes = ?, length = coalesce(?, length), touched_at = ? WHERE id = ?',
      ),
      touchUpload: db.prepare<[number, string]>('UPDATE uploads SET touched_at = ? WHERE id = ?'),
      setUploadHead: db.prepare<[Buffer, string]>('UPDATE uploads SET head = ? WHERE id = ? AND type_checked = 0'),
      setUploadType: db.prepare<[string | null, string]>('UPDATE uploads SET type_checked = 1, detected_type = ?, head = NULL WHERE id = ?'),
      idleUploads: db.prepare<[number, number], UploadRow>(
        'SELECT * FROM uploads WHERE touched_at < ? ORDER BY touched_at LIMIT ?',
      ),
      allUploadIds: db.prepare<[], { id: string }>('SELECT id FROM uploads'),
      insertFile: db.prepare<FileRow>(
        `INSERT INTO files (key, user_id, upload_id, folder, filename, content_type, size, sha256,
           created_at, state, detected_type, category, scan_status, scan_signature, scanned_at)
         VALUES (@key, @user_id, @upload_id, @folder, @filename, @content_type, @size, @sha256,
           @created_at, @state, @detected_type, @category, @scan_status, @scan_signature, @scanned_at)`,
      ),
      getFile: db.prepare<[string], FileRow>('SELECT * FROM files WHERE key = ?'),
      getFileByUpload: db.prepare<[string], FileRow>('SELECT * FROM files WHERE upload_id = ?'),
      setFileState: db.prepare<[FileState, string]>('UPDATE files SET state = ? WHERE key = ?'),
      deleteFile: db.prepare<[string]>('DELETE FROM files WHERE key = ?'),
      filesInTransition: db.prepare<[], FileRow>("SELECT * FROM files WHERE state <> 'ready'"),
      committingUploadIds: db.prepare<[], { upload_id: string }>(
        "SELECT upload_id FROM files WHERE state = 'committing'",
      ),
      list: db.prepare<
        { user_id: string; folder: string | null; created_at: number | null; key: string; limit: number },
        FileRow
      >(
        `SELECT * FROM files
          WHERE user_id = @user_id AND state = 'ready' AND damage IS NULL
            AND (@folder IS NULL OR folder = @folder)
            AND (@created_at IS NULL OR created_at < @created_at
                 OR (created_at = @created_at AND key < @key))
          ORDER BY created_at DESC, key DESC
          LIMIT @limit`,
      ),
      saveDigest: db.prepare<[string, number, Buffer, string]>(
        `INSERT OR REPLACE INTO upload_digests (upload_id, offset, state)
         SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM uploads WHERE id = ?)`,
      ),
      digests: db.prepare<[string, number], DigestCheckpoint>(
        'SELECT offset, state FROM upload_digests WHERE upload_id = ? AND offset <= ? ORDER BY offset DESC',
      ),
      pruneDigests: db.prepare<[string, number, number]>(
        'DELETE FROM upload_digests WHERE upload_id = ? AND offset NOT IN (?, ?)',
      ),
      ping: db.prepare<[], { ok: number }>('SELECT 1 AS ok'),
      markPartial: db.prepare<[string]>('INSERT OR IGNORE INTO partial_uploads (upload_id) VALUES (?)'),
      isPartial: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM partial_uploads WHERE upload_id = ?'),
      // Records against stored bytes (server/storage/damage.ts, server/check-storage-cli.ts).
      markDamage: db.prepare<[FileDamage, number, string, FileDamage]>(
        "UPDATE files SET damage = ?, damaged_at = ? WHERE key = ? AND state = 'ready' AND damage IS NOT ?",
      ),
      clearDamage: db.prepare<[string]>('UPDATE files SET damage = NULL, damaged_at = NULL WHERE key = ? AND damage IS NOT NULL'),
      countDamaged: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM files WHERE damage IS NOT NULL'),
      readyFiles: db.prepare<[], FileRow>("SELECT * FROM files WHERE state = 'ready' ORDER BY key"),
      allFileKeys: db.prepare<[], { key: string }>('SELECT key FROM files'),
      usageByUser: db.prepare<[], { user_id: string; n: number }>(
        'SELECT user_id, coalesce(sum(size), 0) AS n FROM files WHERE damage IS NULL GROUP BY user_id',
      ),
    };
  }

  usage(userId: string): Usage {
    const { used_bytes, reserved_bytes } = this.#totals(userId);
    return { used_bytes, reserved_bytes };
  }

  #totals(userId: string): Usage & { uploads: number } {
    return this.#s.usage.get(userId) ?? { used_bytes: 0, reserved_bytes: 0, uploads: 0 };
  }

  /**
   * Runs `fn` in one IMMEDIATE transaction (repo calls inside nest as savepoints): a change and the
   * webhook event that reports it (events.ts EventSink) commit together or not at all.
   */
  atomically<T>(fn: () => T): T {
    return this.#db.transaction(fn).immediate();
  }

  /**
   * Inserts the upload if its reservation fits the quota and the user holds fewer than
   * `maxUnfinished` unfinished uploads; otherwise writes nothing and says which limit refused it.
   */
  reserveUpload(row: UploadRow, quotaBytes: number, maxUnfinished: number): 'reserved' | 'quota' | 'count' {
    return this.#db
      .transaction(() => {
        const { used_bytes, reserved_bytes, uploads } = this.#totals(row.user_id);
        if (uploads >= maxUnfinished) return 'count';
        if (used_bytes + reserved_bytes + row.reserved_bytes > quotaBytes) return 'quota';
        this.#s.insertUpload.run(row);
        return 'reserved';
      })
      .immediate();
  }

  /**
   * Sets an upload's reservation (and its length once declared) if everything the user holds still
   * fits. Shrinking always succeeds. Returns false when it would not fit.
   */
  setReservation(id: string, reservedBytes: number, length: number | null, quotaBytes: number, now: number): boolean {
    return this.#db
      .transaction(() => {
        const upload = this.#s.getUpload.get(id);
        if (!upload) return false;
        if (reservedBytes > upload.reserved_bytes) {
          const { used_bytes, reserved_bytes } = this.usage(upload.user_id);
          const others = reserved_bytes - upload.reserved_bytes;
          if (used_bytes + others + reservedBytes > quotaBytes) return false;
        }
        this.#s.setReservation.run(reservedBytes, length, now, id);
        return true;
      })
      .immediate();
  }

  /** Room left for one upload of this user: quota minus stored bytes and other uploads' reservations. */
  roomFor(userId: string, uploadId: string, quotaBytes: number): number {
    const { used_bytes, reserved_bytes } = this.usage(userId);
    const own = this.#s.getUpload.get(uploadId);
    const others = reserved_bytes - (own?.user_id === userId ? own.reserved_bytes : 0);
    return Math.max(0, quotaBytes - used_bytes - others);
  }

  /** The first bytes of an upload whose type is not known yet (hooks/type-sniffer.ts). */
  setUploadHead(id: string, head: Buffer): void {
    this.#s.setUploadHead.run(head, id);
  }

  setUploadType(id: string, detectedType: string | null): void {
    this.#s.setUploadType.run(detectedType, id);
  }

  getUpload(id: string): UploadRow | undefined {
    return this.#s.getUpload.get(id);
  }

  touchUpload(id: string, now: number): void {
    this.#s.touchUpload.run(now, id);
  }

  deleteUpload(id: string): void {
    this.#s.deleteUpload.run(id);
  }

  idleUploads(touchedBefore: number, limit: number): UploadRow[] {
    return this.#s.idleUploads.all(touchedBefore, limit);
  }

  /** Ids the database knows as unfinished or being committed; anything else in upload storage is an orphan. */
  knownUploadIds(): Set<string> {
    const ids = new Set(this.#s.allUploadIds.all().map((r) => r.id));
    for (const r of this.#s.committingUploadIds.all()) ids.add(r.upload_id);
    return ids;
  }

  /**
   * A finished upload's row becomes its file's record (quota never counts both). Call it inside the
   * transaction that announces the file (atomically).
   */
  replaceUploadWithFile(file: FileRow): void {
    this.#s.deleteUpload.run(file.upload_id);
    this.#s.insertFile.run(file);
  }

  setFileState(key: string, state: FileState): void {
    this.#s.setFileState.run(state, key);
  }

  deleteFile(key: string): void {
    this.#s.deleteFile.run(key);
  }

  getFile(key: string): FileRow | undefined {
    return this.#s.getFile.get(key);
  }

  /** The file an upload became (files.upload_id is unique). */
  getFileByUploadId(uploadId: string): FileRow | undefined {
    return this.#s.getFileByUpload.get(uploadId);
  }

  /** Ids of every unfinished upload (the start-up check for uploads storage lost). */
  unfinishedUploadIds(): string[] {
    return this.#s.allUploadIds.all().map((r) => r.id);
  }

  filesInTransition(): FileRow[] {
    return this.#s.filesInTransition.all();
  }

  listFiles(q: ListQuery): FileRow[] {
    return this.#s.list.all({
      user_id: q.userId,
      folder: q.folder ?? null,
      created_at: q.after?.createdAt ?? null,
      key: q.after?.key ?? '',
      limit: q.limit,
    });
  }

  /** Saves an upload's hash state at `offset` (nothing when the upload row is gone). */
  saveDigestCheckpoint(uploadId: string, offset: number, state: Uint8Array): void {
    this.#s.saveDigest.run(uploadId, offset, Buffer.from(state.buffer, state.byteOffset, state.byteLength), uploadId);
  }

  /** Saved hash states at or below `offset`, the highest first. */
  digestCheckpoints(uploadId: string, atMost: number): DigestCheckpoint[] {
    return this.#s.digests.all(uploadId, atMost);
  }

  /** Keeps only the saved states at the two given offsets. */
  pruneDigestCheckpoints(uploadId: string, keep: [number, number]): void {
    this.#s.pruneDigests.run(uploadId, keep[0], keep[1]);
  }

  ping(): boolean {
    return this.#s.ping.get()?.ok === 1;
  }

  /** An upload created with Upload-Concat: partial (hooks/concat.ts); the mark goes with its row. */
  markPartialUpload(id: string): void {
    this.#s.markPartial.run(id);
  }

  isPartialUpload(id: string): boolean {
    return this.#s.isPartial.get(id)!.n > 0;
  }

  // --- records against stored bytes (server/storage/damage.ts) ---

  /** Marks a ready file's bytes as missing or damaged; true when the mark is new or changed. */
  markDamage(key: string, damage: FileDamage, now: number): boolean {
    return this.#s.markDamage.run(damage, now, key, damage).changes > 0;
  }

  /** Clears the mark once the bytes match again; true when there was one. */
  clearDamage(key: string): boolean {
    return this.#s.clearDamage.run(key).changes > 0;
  }

  countDamagedFiles(): number {
    return this.#s.countDamaged.get()!.n;
  }

  /** Every ready record, by key (the storage check walks them; one query, rows streamed). */
  readyFiles(): IterableIterator<FileRow> {
    return this.#s.readyFiles.iterate();
  }

  /** Keys of every record in any state: bytes at another key belong to no record. */
  allFileKeys(): Set<string> {
    return new Set(this.#s.allFileKeys.all().map((r) => r.key));
  }

  /** Stored bytes charged per user (what GET /v1/usage reports as used_bytes). */
  usageByUser(): Map<string, number> {
    return new Map(this.#s.usageByUser.all().map((r) => [r.user_id, r.n]));
  }
}
