import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSecretCheck } from '../../../server/auth/secret-check.ts';

const A = 'service-token-aaaaaaaaaaaaaaaaaaaa';
const B = 'service-token-bbbbbbbbbbbbbbbbbbbb';

const cases: Array<[string, Array<string | undefined>, string, boolean]> = [
  ['the one secret', [A], A, true],
  ['any of several (rotation)', [A, B], B, true],
  ['a prefix of it', [A], A.slice(0, -1), false],
  ['it with more after', [A], `${A}x`, false],
  ['another case', [A], A.toUpperCase(), false],
  ['the empty string', [A], '', false],
  ['two secrets joined', [A, B], `${A},${B}`, false],
  ['anything, when the secret is unset', [undefined], '', false],
  ['the word undefined, when the secret is unset', [undefined], 'undefined', false],
  ['anything, when no secret is configured', [], A, false],
];

for (const [name, secrets, presented, ok] of cases) {
  test(`createSecretCheck: ${name} ${ok ? 'matches' : 'does not match'}`, () => {
    assert.equal(createSecretCheck(secrets)(presented), ok);
  });
}
