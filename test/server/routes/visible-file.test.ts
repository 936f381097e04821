import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireVisibleFile, visibleFile, type Viewer } from '../../../server/routes/visible-file.ts';
import type { FileRow, FileState } from '../../../server/db/repo.ts';
import { AppError } from '../../../server/errors.ts';

function row(state: FileState, owner = 'alice'): FileRow {
  return {
    key: `users/${owner}/2025/01/31/0123456789abcdef0123456789abcdef.txt`, user_id: owner, upload_id: 'u', folder: '', filename: 'a.txt',
    content_type: 'text/plain', size: 1, sha256: 'a'.repeat(64), created_at: 0, state, detected_type: null, category: null,
    scan_status: null, scan_signature: null, scanned_at: null,
  };
}

const alice: Viewer = { kind: 'user', userId: 'alice' };
const bob: Viewer = { kind: 'user', userId: 'bob' };
const service: Viewer = { kind: 'service' };

const cases: Array<[string, Viewer, FileRow | undefined, boolean]> = [
  ['the owner sees a ready file', alice, row('ready'), true],
  ['the service token sees anyone\'s ready file', service, row('ready'), true],
  ['a signed link sees the ready file it names', 'signed-link', row('ready'), true],
  ['another user does not', bob, row('ready'), false],
  ['nobody sees a file whose finish a crash interrupted', alice, row('committing'), false],
  ['nobody sees a file being deleted', service, row('deleting'), false],
  ['a signed link does not see a deleted file', 'signed-link', row('deleting'), false],
  ['no record is no file', alice, undefined, false],
];

for (const [name, viewer, file, seen] of cases) {
  test(`visibleFile: ${name}`, () => {
    assert.equal(visibleFile(viewer, file), seen ? file : undefined);
    if (seen) assert.equal(requireVisibleFile(viewer, file), file);
    else {
      assert.throws(() => requireVisibleFile(viewer, file, 'gone'), (error: unknown) =>
        error instanceof AppError && error.code === 'not_found' && error.message === 'gone');
    }
  });
}
