// The public shape of a file record (docs/api.md "File record": key, user_id, folder, filename,
// content_type, size, sha256, created_at), and what the server learnt of it: the detected type
// and category (hooks/content-type.ts) and the virus scan's verdict (server/scan/worker.ts).
import type { Category, FileRow, ScanStatus } from '../db/repo.ts';

export interface FileRecord {
  key: string;
  user_id: string;
  folder: string;
  filename: string;
  content_type: string;
  detected_type: string | null;
  category: Category | null;
  size: number;
  sha256: string;
  created_at: string;
  scan_status: ScanStatus | null;
  scan_signature: string | null;
}

export function toFileRecord(row: FileRow): FileRecord {
  return {
    key: row.key,
    user_id: row.user_id,
    folder: row.folder,
    filename: row.filename,
    content_type: row.content_type,
    detected_type: row.detected_type,
    category: row.category,
    size: row.size,
    sha256: row.sha256,
    created_at: new Date(row.created_at).toISOString(),
    scan_status: row.scan_status,
    scan_signature: row.scan_signature,
  };
}
