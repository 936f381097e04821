// Bad input to the files API answered cleanly (server/routes/files.ts): keys that are malformed,
// oddly encoded or climb with .., and limit and cursor values that are not valid. Every refusal is
// problem+json with a stable code, and no file is touched.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { badInputServer } from '../../helpers/bad-input.ts';
import { expectProblem, expectRawProblem, rawRequest } from '../../helpers/problem.ts';
import { createUpload, metadataHeader } from '../../helpers/tus.ts';

describe('bad input: files API', () => {
  const fixture = badInputServer();
  // Paging with limit=1 needs a second page: Mallory holds two files before any test runs.
  before(async () => {
    for (const filename of ['one.txt', 'two.txt']) {
      const res = await createUpload(fixture.server.url, fixture.mallory, 0, { filename });
      assert.equal(res.status, 201);
    }
  });

  test('keys in the files API that are malformed, oddly encoded or climb with ..: 404', async () => {
    const { server, mallory, service, post } = fixture;
    const data = Buffer.from('keep me');
    const res = await post({ ...mallory, 'Upload-Length': String(data.length), 'Upload-Metadata': metadataHeader({ filename: 'keep.txt' }), 'Content-Type': 'application/offset+octet-stream' }, data);
    const key: string = (await res.json()).key;
    const [, , yyyy, mm, dd, last] = key.split('/');
    const victimData = Buffer.from('not yours');
    const victimRes = await post({ ...service, 'Upload-Length': String(victimData.length), 'Upload-Metadata': metadataHeader({ user_id: 'victim' }), 'Content-Type': 'application/offset+octet-stream' }, victimData);
    const victimKey: string = (await victimRes.json()).key;
    // Percent-encoded, the key still names the file (keys may be sent raw or percent-encoded).
    assert.equal((await fetch(`${server.url}/v1/files/metadata/${encodeURIComponent(key)}`, { headers: mallory })).status, 200);
    const paths = [
      'nope',
      'users/mallory',
      `users/mallory/${yyyy}/${mm}/${dd}`,
      key.toUpperCase(),
      `${key}/`,
      `/${key}`,
      `${key}.txt`,
      `users/mallory/../${victimKey.slice('users/'.length)}`,
      `users/mallory/%2E%2E/${victimKey.slice('users/'.length)}`,
      `users/mallory/..%2F${victimKey.slice('users/'.length)}`,
      `users/mallory/${yyyy}/${mm}/${dd}/../../../../../secrets.json`,
      `users%2Fmallory%2F..%2F..%2Fdata.db`,
      `users/../data.db`,
      '..%2Fsecrets.json',
      '%2e%2e/%2e%2e/secrets.json',
      encodeURIComponent(encodeURIComponent(key)),
      `${key}%00`,
      '%ff%fe',
      `${key}%`,
      'users/mallory/2024/01/01/%zz',
      `users%5Cmallory%5C${yyyy}%5C${mm}%5C${dd}%5C${last}`,
    ];
    for (const p of paths) {
      for (const [method, prefix] of [['GET', '/v1/files/metadata/'], ['DELETE', '/v1/files/']] as const) {
        expectRawProblem(await rawRequest(server.url, method, `${prefix}${p}`, mallory), 404, 'not_found', `${method} ${p}`);
        // The service may see every user's files, so only paths that name no file at all are tried.
        if (!p.includes('victim')) {
          expectRawProblem(await rawRequest(server.url, method, `${prefix}${p}`, service), 404, 'not_found', `service ${method} ${p}`);
        }
      }
    }
    assert.ok((await server.readStored(key))?.equals(data), 'the file survived every DELETE');
    assert.ok((await server.readStored(victimKey))?.equals(victimData), "the victim's file survived every DELETE");
    assert.equal((await fetch(`${server.url}/v1/files/metadata/${key}`, { headers: mallory })).status, 200);
  });

  test('limit and cursor that are not valid: 400 invalid_parameter', async () => {
    const { server, mallory, service } = fixture;
    const forged = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const queries = [
      'limit=0', 'limit=abc', 'limit=-1', 'limit=1.5', 'limit=1e2', 'limit=', 'limit=99999999999999999999', 'limit=1001',
      'cursor=garbage', 'cursor=!!!', `cursor=${forged({ a: 1 })}`, `cursor=${forged(['x', 'y'])}`, `cursor=${forged([1e300, 'k'])}`,
      `cursor=${forged([1.5, 'k'])}`, `cursor=${forged([1])}`, `cursor=${forged('users/mallory')}`,
    ];
    for (const q of queries) {
      await expectProblem(await fetch(`${server.url}/v1/files/all?${q}`, { headers: mallory }), 400, 'invalid_parameter', q);
      await expectProblem(await fetch(`${server.url}/v1/files/all?user_id=mallory&${q}`, { headers: service }), 400, 'invalid_parameter', `service ${q}`);
    }
    // A cursor handed out by the server works.
    const page = await (await fetch(`${server.url}/v1/files/all?limit=1`, { headers: mallory })).json();
    assert.equal(page.files.length, 1);
    assert.equal(typeof page.next_cursor, 'string');
    const next = await fetch(`${server.url}/v1/files/all?limit=1&cursor=${page.next_cursor}`, { headers: mallory });
    assert.equal(next.status, 200);
    assert.notEqual((await next.json()).files[0].key, page.files[0].key);
  });
});
