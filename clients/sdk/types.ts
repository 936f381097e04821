// The shapes the server answers (docs/api.md "Files"). FileRecord is the server's own type, imported
// as a type only so the two cannot drift apart.
export type { FileRecord } from '../../server/routes/file-record.ts';
import type { FileRecord } from '../../server/routes/file-record.ts';

export interface FileList {
  files: FileRecord[];
  /** Pass back as `cursor` for the next page; null on the last one. */
  next_cursor: string | null;
}

export interface ListOptions {
  /** One logical folder, exactly (not its sub-folders). */
  folder?: string;
  /** 1–1000, default 50. */
  limit?: number;
  cursor?: string;
}

export interface Usage {
  used_bytes: number;
  reserved_bytes: number;
  quota_bytes: number;
}

export interface SignedUrl {
  url: string;
  expires_at: string;
}

export interface SignedUrlOptions {
  /** Lifetime in seconds (1 s – 7 days); the server's default otherwise. */
  ttl?: number;
  disposition?: 'attachment' | 'inline';
}

export interface BatchDownload {
  token: string;
  url: string;
  expires_at: string;
}

export interface UserToken {
  token: string;
  expires_at: string;
  user_id: string;
}

export interface Health {
  status: 'ok' | 'fail';
  disk: { ok: boolean; free_bytes?: number; total_bytes?: number };
  db: { ok: boolean };
  storage: { ok: boolean; kind?: string };
}

export interface Jwks {
  keys: Array<Record<string, unknown> & { kty: string; kid?: string }>;
}
