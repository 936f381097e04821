import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  MAX_BATCH_TOKEN_LENGTH,
  decodeKeyFromPath,
  encodeKeyForPath,
  signBatchToken,
  signLink,
  verifyBatchToken,
  verifyLink,
  type LinkClaims,
  type VerifyResult,
} from '../../../server/http/link-signing.ts';

const OLD = Buffer.alloc(32, 1);
const NEW = Buffer.alloc(32, 2);
const NOW = 1_700_000_000;
const claims: LinkClaims = { key: 'users/alice/2024/06/01/abc.jpg', exp: NOW + 60, disposition: 'attachment' };
const sig = signLink(claims, NEW);

function flipLastChar(text: string): string {
  return text.slice(0, -1) + (text.endsWith('A') ? 'B' : 'A');
}

type Link = { key: string; exp: number | string; disposition: string; sig: string };
const linkCases: Array<[string, Link, Buffer[], number, VerifyResult]> = [
  ['valid', { ...claims, sig }, [NEW], NOW, 'ok'],
  ['exp as the raw query string', { ...claims, exp: String(claims.exp), sig }, [NEW], NOW, 'ok'],
  ['one second before expiry', { ...claims, sig }, [NEW], claims.exp - 1, 'ok'],
  ['at expiry', { ...claims, sig }, [NEW], claims.exp, 'expired'],
  ['after expiry', { ...claims, sig }, [NEW], claims.exp + 3600, 'expired'],
  ['tampered key', { ...claims, key: 'users/alice/2024/06/01/abd.jpg', sig }, [NEW], NOW, 'invalid'],
  ['tampered exp (later)', { ...claims, exp: claims.exp + 1, sig }, [NEW], NOW, 'invalid'],
  ['tampered exp into the past is invalid, not expired', { ...claims, exp: NOW - 1, sig }, [NEW], NOW, 'invalid'],
  ['tampered disposition', { ...claims, disposition: 'inline', sig }, [NEW], NOW, 'invalid'],
  ['tampered sig', { ...claims, sig: flipLastChar(sig) }, [NEW], NOW, 'invalid'],
  ['tampered and expired is invalid', { ...claims, key: 'x', sig }, [NEW], claims.exp + 10, 'invalid'],
  ['rotation: old key still verifies', { ...claims, sig: signLink(claims, OLD) }, [NEW, OLD], NOW, 'ok'],
  ['rotation: retired key no longer verifies', { ...claims, sig: signLink(claims, OLD) }, [NEW], NOW, 'invalid'],
  ['no keys', { ...claims, sig }, [], NOW, 'invalid'],
  ['exp with leading zero is not the signed text', { ...claims, exp: `0${claims.exp}`, sig }, [NEW], NOW, 'invalid'],
  ['exp in exponent form', { ...claims, exp: '1.7e9', sig }, [NEW], NOW, 'invalid'],
  ['exp with a space', { ...claims, exp: ` ${claims.exp}`, sig }, [NEW], NOW, 'invalid'],
  ['negative exp', { ...claims, exp: '-1', sig }, [NEW], NOW, 'invalid'],
  ['unknown disposition', { ...claims, disposition: 'ATTACHMENT', sig }, [NEW], NOW, 'invalid'],
  ['sig with padding', { ...claims, sig: `${sig}=` }, [NEW], NOW, 'invalid'],
  ['truncated sig', { ...claims, sig: sig.slice(0, 20) }, [NEW], NOW, 'invalid'],
  ['empty sig', { ...claims, sig: '' }, [NEW], NOW, 'invalid'],
  ['junk sig', { ...claims, sig: '!!!' }, [NEW], NOW, 'invalid'],
];

for (const [name, link, keys, now, expected] of linkCases) {
  test(`verifyLink: ${name}`, () => {
    assert.equal(verifyLink(link, keys, now), expected);
  });
}

test('signLink: field boundaries cannot be shifted', () => {
  // Plain concatenation would give "a" + "12" === "a1" + "2".
  const a = signLink({ key: 'a', exp: 12, disposition: 'inline' }, NEW);
  assert.equal(verifyLink({ key: 'a1', exp: 2, disposition: 'inline', sig: a }, [NEW], 0), 'invalid');
  assert.equal(verifyLink({ key: 'a', exp: 12, disposition: 'inline', sig: a }, [NEW], 0), 'ok');
});

test('signLink: any key character, and refuses bad input', () => {
  const key = 'users/bob/2024/01/01/x\u0000y%2F..\u00e9😀.bin';
  const s = signLink({ ...claims, key }, NEW);
  assert.equal(verifyLink({ ...claims, key, sig: s }, [NEW], NOW), 'ok');
  assert.throws(() => signLink(claims, Buffer.alloc(0)), TypeError);
  assert.throws(() => signLink({ ...claims, exp: 1.5 }, NEW), TypeError);
});

const pathKeys = ['users/alice/2024/06/01/abc.jpg', 'a', 'ünïcödé/😀 file.txt', 'with%20percent/and?query#frag', '..'];
for (const key of pathKeys) {
  test(`encodeKeyForPath round-trips ${JSON.stringify(key)}`, () => {
    const segment = encodeKeyForPath(key);
    assert.match(segment, /^[A-Za-z0-9_-]+$/);
    assert.equal(decodeKeyFromPath(segment), key);
  });
}

const badSegments: Array<[string, string]> = [
  ['empty', ''],
  ['one char (impossible length)', 'a'],
  ['padding', 'YQ=='],
  ['standard base64 alphabet', 'a+b/'],
  ['non-canonical trailing bits', 'YR'],
  ['invalid UTF-8', Buffer.from([0xff, 0xfe]).toString('base64url')],
  ['percent-encoded', 'YQ%3D'],
  ['too long', 'A'.repeat(5000)],
];
for (const [name, segment] of badSegments) {
  test(`decodeKeyFromPath rejects ${name}`, () => {
    assert.equal(decodeKeyFromPath(segment), null);
  });
}

const batch = { userId: 'alice', keys: ['users/alice/a.jpg', 'users/alice/b.txt'], exp: NOW + 60, name: 'holiday' };
const token = signBatchToken(batch, NEW);

test('batch token round-trips with and without a name', () => {
  assert.deepEqual(verifyBatchToken(token, [NEW], NOW), { ok: true, payload: batch });
  const { name: _name, ...unnamed } = batch;
  assert.deepEqual(verifyBatchToken(signBatchToken(unnamed, NEW), [NEW], NOW), { ok: true, payload: unnamed });
});

const otherBody = signBatchToken({ ...batch, keys: ['users/bob/secret.pdf'] }, OLD).split('.')[0];
const batchCases: Array<[string, string, Buffer[], number, string]> = [
  ['expired', token, [NEW], batch.exp, 'expired'],
  ['rotation', signBatchToken(batch, OLD), [NEW, OLD], NOW, 'ok'],
  ['unknown key', signBatchToken(batch, OLD), [NEW], NOW, 'invalid'],
  ['body swapped for another', `${otherBody}.${token.split('.')[1]}`, [NEW, OLD], NOW, 'invalid'],
  ['tampered sig', flipLastChar(token), [NEW], NOW, 'invalid'],
  ['tampered and expired', flipLastChar(token), [NEW], batch.exp + 10, 'invalid'],
  ['no dot', token.replace('.', ''), [NEW], NOW, 'invalid'],
  ['extra part', `${token}.x`, [NEW], NOW, 'invalid'],
  ['empty', '', [NEW], NOW, 'invalid'],
  ['junk', 'hello.world', [NEW], NOW, 'invalid'],
  ['over the size limit', `${'A'.repeat(MAX_BATCH_TOKEN_LENGTH)}.${token.split('.')[1]}`, [NEW], NOW, 'invalid'],
];
for (const [name, value, keys, now, expected] of batchCases) {
  test(`verifyBatchToken: ${name}`, () => {
    const result = verifyBatchToken(value, keys, now);
    assert.equal(result.ok ? 'ok' : result.reason, expected);
  });
}

test('batch token carries 200 realistic keys within the URL budget', () => {
  const keys = Array.from({ length: 200 }, (_, i) => `users/alice/2024/06/${String(1 + (i % 28)).padStart(2, '0')}/${i.toString(16).padStart(32, '0')}.jpg`);
  const big = signBatchToken({ userId: 'alice', keys, exp: NOW + 60 }, NEW);
  assert.ok(big.length <= MAX_BATCH_TOKEN_LENGTH, `${big.length}`);
  assert.match(big, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  const result = verifyBatchToken(big, [NEW], NOW);
  assert.ok(result.ok);
  assert.deepEqual(result.payload.keys, keys);
});

test('signBatchToken refuses a token too long for a URL', () => {
  // Hashes do not compress, so this cannot slip under the limit.
  const keys = Array.from({ length: 400 }, (_, i) => `users/alice/${createHash('sha256').update(String(i)).digest('hex')}`);
  assert.throws(() => signBatchToken({ userId: 'alice', keys, exp: NOW + 60 }, NEW), RangeError);
});
