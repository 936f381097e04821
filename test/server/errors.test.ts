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

// As @aws-sdk/client-s3 throws them once its own retries are spent.
const s3Error = (name: string, httpStatusCode: number) => Object.assign(new Error(name), { name, $fault: httpStatusCode >= 500 ? 'server' : 'client', $metadata: { httpStatusCode } });

for (const [error, expected] of [
  [s3Error('SlowDown', 503), 'unavailable'],
  [s3Error('ServiceUnavailable', 503), 'unavailable'],
  [s3Error('InternalError', 500), 'unavailable'],
  [s3Error('NoSuchKey', 404), null],
  [s3Error('AccessDenied', 403), null],
  [Object.assign(new Error('odd'), { $metadata: { httpStatusCode: '503' } }), null],
] as const) {
  test(`S3 ${error.name} (${String(error.$metadata.httpStatusCode)}): ${expected ?? 'not mapped (a fault: 500)'}`, () => {
    assert.equal(toAppError(error)?.code ?? null, expected);
  });
}
