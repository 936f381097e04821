// Authentication and isolation on every route (docs/api.md "Authentication"): no credentials is 401,
// another user's upload or file is 404, and a refused caller changes nothing. Each way in has its
// own suite: test/server/auth/ (tokens, cookie, service token, keys), test/server/routes/tokens.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { expectProblem } from '../helpers/problem.ts';
import { TUS } from '../helpers/tus.ts';
import { aliceAndBob, send } from './auth/alice-and-bob.ts';

describe('auth: every route refuses what it must', () => {
  const fixture = aliceAndBob();

  test('no credentials: 401 unauthenticated on every route', async () => {
    const { aliceUntouched, refuseEverywhere } = fixture;
    await refuseEverywhere({}, 'unauthenticated', 'no credentials');
    await aliceUntouched();
  });

  test("another user's upload or file: 404 not_found (never 403), and nothing changes", async () => {
    const { server, bob, uploadUrl, fileKey, routes, aliceUntouched } = fixture;
    const uploadId = uploadUrl.split('/').pop()!;
    for (const route of routes.filter((r) => r.path.includes(uploadId) || r.path.includes(fileKey) || r.body?.toString().includes(uploadId))) {
      await expectProblem(await send(server.url, route, bob), 404, 'not_found', `bob / ${route.name}`, route.method);
    }
    // The key percent-encoded is the same file, and just as invisible.
    const encoded = encodeURIComponent(fileKey);
    await expectProblem(await fetch(`${server.url}/v1/files/metadata/${encoded}`, { headers: bob }), 404, 'not_found');
    await expectProblem(await fetch(`${server.url}/v1/files/${encoded}`, { method: 'DELETE', headers: bob }), 404, 'not_found');
    // The method override reaches the same check.
    const override = await fetch(uploadUrl, {
      method: 'POST',
      headers: { ...TUS, ...bob, 'X-HTTP-Method-Override': 'DELETE' },
    });
    await expectProblem(override, 404, 'not_found', 'override DELETE');
    // Bob's own views do not show Alice's data.
    const list = await (await fetch(`${server.url}/v1/files/all`, { headers: bob })).json();
    assert.deepEqual(list, { files: [], next_cursor: null });
    const usage = await (await fetch(`${server.url}/v1/usage`, { headers: bob })).json();
    assert.equal(usage.used_bytes + usage.reserved_bytes, 0);
    // Naming Alice explicitly is refused, not silently ignored.
    await expectProblem(await fetch(`${server.url}/v1/files/all?user_id=alice`, { headers: bob }), 403, 'forbidden');
    await expectProblem(await fetch(`${server.url}/v1/usage?user_id=alice`, { headers: bob }), 403, 'forbidden');
    await aliceUntouched();
  });
});
