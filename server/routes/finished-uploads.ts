// A finished upload stays addressable at its tus URL for as long as its file exists, as tusd does.
// A client whose final PATCH response was lost (mobile network, proxy timeout, a crash right after
// the record was written) asks HEAD for the offset; a 404 there makes tus-js-client create a new
// upload and store and charge the file twice, and tuspy fail on every later run.
//  - HEAD: 200 with Upload-Offset = Upload-Length (tus 1.0 §3.1 HEAD) and X-File-Key.
//  - PATCH at that offset: success with the file record again (what the lost response carried);
//    nothing is read or stored. Another offset: 409, as for any upload (tus 1.0 §3.2 PATCH).
//  - DELETE: 409; the file is deleted through the files API (DELETE /v1/files/{key}).
// The owner check is the same as for an unfinished upload: someone else's answers 404.
import type { Caller } from '../auth/caller.ts';
import { visibleFile } from './visible-file.ts';
import type { Repository } from '../db/contract.ts';
import type { FileRow } from '../db/repo.ts';
import { AppError } from '../errors.ts';
import { toFileRecord } from './file-record.ts';

/** The ready file an upload became, if the caller may see it. */
export async function finishedFileOf(repo: Repository, caller: Caller, uploadId: string): Promise<FileRow | undefined> {
  return visibleFile(caller, await repo.getFileByUploadId(uploadId));
}

export function answerFinished(method: string, file: FileRow, request: Request): Response {
  const size = String(file.size);
  const headers = new Headers({
    'Tus-Resumable': '1.0.0', 'Upload-Offset': size, 'Upload-Length': size, 'X-File-Key': file.key, 'Cache-Control': 'no-store',
  });
  if (method === 'HEAD') return new Response(null, { status: 200, headers });
  if (method === 'PATCH') {
    if (request.headers.get('upload-offset') !== size) {
      throw new AppError('offset_mismatch', `the upload is finished: its offset is ${size}`, { 'Upload-Offset': size });
    }
    headers.set('Content-Type', 'application/json');
    return new Response(JSON.stringify(toFileRecord(file)), { status: 200, headers });
  }
  throw new AppError('conflict', `the upload is finished; delete the file with DELETE /v1/files/${file.key}`);
}
