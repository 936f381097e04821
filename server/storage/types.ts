// Where bytes live. Hooks and routes see only this interface; local disk and S3 implement it.
import type { Readable } from 'node:stream';
import type { DataStore } from '@tus/utils';

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

export interface StoredFile {
  size: number;
  modifiedAt: Date;
}

/** A finished file opened to be sent, with the size storage holds at its key right now. */
export interface OpenedFile {
  body: Readable;
  /** The whole stored object's size, learnt in the same round trip as the open (fstat; S3's length). */
  storedSize: number;
}

/** One finished file's bytes as storage lists them. */
export interface ListedFile {
  key: string;
  size: number;
  modifiedAt: Date;
}

export interface Storage {
  readonly kind: 'file' | 's3';
  /** The tus DataStore that receives upload bytes. */
  readonly tusStore: DataStore;
  /**
   * Every offset at which this backend can hold an upload durably is a multiple of this many bytes,
   * or the upload's end; hooks/sha256.ts saves its hash state there. null: every stored byte can be
   * read back (readUpload), so nothing needs saving.
   */
  readonly digestCheckpointBytes: number | null;
  /**
   * Streams bytes [start, end) of an upload (to rebuild its digest after a restart), or null when the
   * backend cannot read them back: S3 cannot read the completed parts of an open multipart upload.
   */
  readUpload(uploadId: string, start: number, end: number): Promise<Readable | null>;
  /** Ids of every unfinished upload present in storage (for the start-up orphan sweep). */
  listUploadIds(): Promise<string[]>;
  /** Removes an unfinished upload's bytes and tus bookkeeping. Idempotent. */
  removeUpload(uploadId: string): Promise<void>;
  /**
   * Moves a finished upload's bytes to `key` and removes its tus bookkeeping. Idempotent: when the
   * bytes are already at `key` it only cleans up, so a crashed commit can simply be run again.
   */
  promote(uploadId: string, key: string): Promise<void>;
  statFile(key: string): Promise<StoredFile | null>;
  openFile(key: string, range?: ByteRange): Promise<Readable>;
  /**
   * Opens `range` of a finished file (the whole file without one) and reports the stored size, so a
   * caller can compare it with the record before it sends a status line. null when nothing is
   * stored at `key`. A range past the stored end gives an empty body (and the smaller storedSize).
   */
  openSized(key: string, range?: ByteRange): Promise<OpenedFile | null>;
  /** Every finished file's bytes under `users/`, whatever the database says (server/check-storage-cli.ts). */
  listFiles(): AsyncIterable<ListedFile>;
  /** Removes a finished file. Idempotent. */
  removeFile(key: string): Promise<void>;
  /** Throws when the backend cannot serve. */
  health(): Promise<void>;
}
