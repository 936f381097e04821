import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppError, diskFullError, toAppError } from '../../server/errors.ts';

const errno = (code: string) => Object.assign(new Error(code), { code });

for (const code of ['ENOSPC', 'EDQUOT', 'SQLITE_FULL']) {
  test(`${code} is a full disk: 507 insufficient_storage, with the advice given`, () => {
    const full = diskFullError(errno(code), 'resume the upload later');
    assert.ok(full instanceof AppError);
    assert.equal(full.code, 'insufficient_storage');
    assert.equal(full.status, 507);
    assert.match(full.message, /resume the upload later$/);
    assert.equal(toAppError(errno(code))?.code, 'insufficient_storage');
  });
}

for (const error of [errno('EACCES'), errno('ENOENT'), errno('SQLITE_BUSY'), new Error('boom'), null, undefined, 'ENOSPC']) {
  test(`not a full disk: ${String((error as { code?: string } | null)?.code ?? error)}`, () => {
    assert.equal(diskFullError(error), null);
  });
}
