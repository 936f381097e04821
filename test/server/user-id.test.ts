// The user-id rule (server/user-id.ts), and the file keys that hold a user id as a folder
// (server/storage/keys.ts): a key whose user folder breaks the rule is no key.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileKey, parseKey } from '../../server/storage/keys.ts';
import { isValidUserId } from '../../server/user-id.ts';

const UPLOAD_ID = '0123456789abcdef0123456789abcdef';

const cases: [userId: string, valid: boolean][] = [
  ['alice', true],
  ['A.b_c-9', true],
  ['a'.repeat(128), true],
  ['...', true],
  ['.hidden', true],
  ['', false],
  ['.', false],
  ['..', false],
  ['a'.repeat(129), false],
  ['al/ice', false],
  ['al\\ice', false],
  ['alice ', false],
  ['élise', false],
  ['al%2fice', false],
];

test('a user id is 1 to 128 of [A-Za-z0-9._-], never "." or ".."', () => {
  for (const [userId, valid] of cases) assert.equal(isValidUserId(userId), valid, JSON.stringify(userId));
});

test('a file key parses only when its user folder is a valid user id', () => {
  for (const [userId, valid] of cases) {
    const key = `users/${userId}/2024/05/06/${UPLOAD_ID}.png`;
    assert.deepEqual(parseKey(key), valid ? { userId, uploadId: UPLOAD_ID } : null, key);
  }
  assert.deepEqual(parseKey(fileKey('alice', new Date(Date.UTC(2024, 4, 6)), UPLOAD_ID, 'x.PNG')), { userId: 'alice', uploadId: UPLOAD_ID });
});
