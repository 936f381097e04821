// The public shape of a file record (SPEC "Files API": key, user_id, folder, filename,
// content_type, size, sha256, created_at).
import type { FileRow } from '../db/repo.ts';

export interface FileRecord {
  key: string;
  user_id: string;
  folder: string;
  filename: string;
  content_type: string;
  size: number;
  sha256: string;
  created_at: string;
}

export function toFileRecord(row: FileRow): FileRecord {
  return {
    key: row.key,
    user_id: row.user_id,
    folder: row.folder,
    filename: row.filename,
    content_type: row.content_type,
    size: row.size,
    sha256: row.sha256,
    created_at: new Date(row.created_at).toISOString(),
  };
}
