// Cookie-authenticated requests that change state (POST, PATCH, DELETE, and POST with
// X-HTTP-Method-Override) from a page on another origin are refused 403 `origin_not_allowed` —
// on the files API and on the tus endpoint alike — while the server's own pages, origins listed in
// CORS_ORIGINS, non-browser clients, and Bearer / service-token requests from anywhere pass.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { expectProblem } from '../../helpers/problem.ts';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { createUpload, tusUpload } from '../../helpers/tus.ts';

const LISTED = 'https://app.example';
const EVIL = 'https://evil.example';

describe('cookie-authenticated state changes are held to their origin', () => {
  let server: TestServer;
  let bearer: Record<string, string>;
  let cookie: Record<string, string>;
  let fileKey: string;
  let uploadUrl: string;
  before(async () => {
    server = await startTestServer({ env: { CORS_ORIGINS: LISTED } });
    const token = await server.token('cara');
    bearer = { Authorization: `Bearer ${token}` };
    cookie = { Cookie: `sl_token=${token}` };
    fileKey = (await tusUpload({ endpoint: server.url, headers: bearer, data: randomBytes(100), metadata: { filename: 'keep.bin' } }).done).fileKey!;
    uploadUrl = (await createUpload(server.url, bearer, 10)).headers.get('location')!;
  });
  after(() => server.stop());

  const fileUrl = () => `${server.url}/v1/files/${encodeURIComponent(fileKey)}`;
  const batch = (headers: Record<string, string>) =>
    fetch(`${server.url}/v1/files/batch-download`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify({ keys: [fileKey] }) });
  const stillThere = async () => {
    assert.equal((await fetch(`${server.url}/v1/files/metadata/${encodeURIComponent(fileKey)}`, { headers: bearer })).status, 200, 'the file is still there');
    assert.equal((await fetch(uploadUrl, { method: 'HEAD', headers: { ...bearer, 'Tus-Resumable': '1.0.0' } })).status, 200, 'the upload is still there');
  };

  test('from another origin: DELETE, POST, tus creation, PATCH and the method override are refused', async () => {
    const foreign = { ...cookie, Origin: EVIL };
    await expectProblem(await fetch(fileUrl(), { method: 'DELETE', headers: foreign }), 403, 'origin_not_allowed', 'DELETE');
    await expectProblem(await batch(foreign), 403, 'origin_not_allowed', 'batch');
    const created = await fetch(`${server.url}/v1/uploads`, { method: 'POST', headers: { ...foreign, 'Tus-Resumable': '1.0.0', 'Upload-Length': '5' } });
    assert.equal(created.headers.get('tus-resumable'), '1.0.0', 'a tus refusal still says Tus-Resumable');
    await expectProblem(created, 403, 'origin_not_allowed', 'tus creation');
    const tus = { ...foreign, 'Tus-Resumable': '1.0.0' };
    await expectProblem(await fetch(uploadUrl, { method: 'PATCH', headers: { ...tus, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, body: 'hello' }), 403, 'origin_not_allowed', 'PATCH');
    await expectProblem(await fetch(uploadUrl, { method: 'DELETE', headers: tus }), 403, 'origin_not_allowed', 'tus DELETE');
    await expectProblem(await fetch(uploadUrl, { method: 'POST', headers: { ...tus, 'X-HTTP-Method-Override': 'DELETE' } }), 403, 'origin_not_allowed', 'override');
    await stillThere();
  });

  test('without Origin, Sec-Fetch-Site decides; an opaque origin is refused', async () => {
    await expectProblem(await fetch(fileUrl(), { method: 'DELETE', headers: { ...cookie, 'Sec-Fetch-Site': 'cross-site' } }), 403, 'origin_not_allowed');
    await expectProblem(await fetch(fileUrl(), { method: 'DELETE', headers: { ...cookie, 'Sec-Fetch-Site': 'same-site' } }), 403, 'origin_not_allowed', 'a sibling site');
    await expectProblem(await fetch(fileUrl(), { method: 'DELETE', headers: { ...cookie, Origin: 'null' } }), 403, 'origin_not_allowed', 'Origin: null');
    await stillThere();
    assert.equal((await batch({ ...cookie, 'Sec-Fetch-Site': 'same-origin' })).status, 200);
  });

  test('the server\'s own origin, a listed origin and a non-browser client pass with the cookie', async () => {
    assert.equal((await batch({ ...cookie, Origin: server.url })).status, 200, 'own origin');
    assert.equal((await batch({ ...cookie, Origin: LISTED })).status, 200, 'listed origin');
    assert.equal((await batch(cookie)).status, 200, 'no Origin, no Sec-Fetch-Site');
    // Reading is never refused here: what a page may read is CORS's business.
    assert.equal((await fetch(`${server.url}/v1/files/all`, { headers: { ...cookie, Origin: EVIL } })).status, 200);
  });

  test('Bearer and service-token requests from any origin are unaffected', async () => {
    assert.equal((await batch({ ...bearer, Origin: EVIL, 'Sec-Fetch-Site': 'cross-site' })).status, 200);
    assert.equal((await createUpload(server.url, { ...bearer, Origin: EVIL }, 5)).status, 201);
    const minted = await fetch(`${server.url}/v1/files/generate-token?user_id=cara`, { method: 'POST', headers: { 'X-Service-Token': server.serviceToken, Origin: EVIL, Cookie: cookie.Cookie! } });
    assert.equal(minted.status, 200);
    const deleted = await fetch(fileUrl(), { method: 'DELETE', headers: { ...bearer, Origin: EVIL } });
    assert.equal(deleted.status, 200);
  });
});

describe('PUBLIC_URL is the server\'s own origin', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ env: { PUBLIC_URL: 'https://files.example' } });
  });
  after(() => server.stop());

  test('a page on PUBLIC_URL passes, any other origin is refused', async () => {
    const cookie = { Cookie: `sl_token=${await server.token('pia')}`, 'Content-Type': 'application/json' };
    const post = (origin: string) => fetch(`${server.url}/v1/files/batch-download`, { method: 'POST', headers: { ...cookie, Origin: origin }, body: '{"keys":[]}' });
    // Past the origin check, the route refuses the empty batch itself.
    assert.equal((await post('https://files.example')).status, 400);
    await expectProblem(await post('https://files.example.evil.example'), 403, 'origin_not_allowed');
  });
});
