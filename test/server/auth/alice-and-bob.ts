// A server where Alice owns one unfinished upload (4 of 10 bytes) and one finished file, every
// authenticated route aimed at them, and the check that a refused caller changed nothing of hers.
// The suites that refuse callers (test/server/auth*.test.ts, test/server/routes/tokens.test.ts)
// run against it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import { expectProblem } from '../../helpers/problem.ts';
import { recordCount } from '../../helpers/records.ts';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { createUpload, headUpload, patchUpload, TUS, tusUpload } from '../../helpers/tus.ts';

export type Headers = Record<string, string>;

export interface Route {
  name: string;
  method: string;
  path: string;
  headers?: Headers;
  body?: Buffer;
}

/** Every authenticated route, aimed at `owner`'s upload and file. */
function everyRoute(uploadUrl: string, fileKey: string): Route[] {
  const uploadPath = new URL(uploadUrl).pathname;
  return [
    { name: 'tus POST', method: 'POST', path: '/v1/uploads', headers: { ...TUS, 'Upload-Length': '10' } },
    { name: 'tus HEAD', method: 'HEAD', path: uploadPath, headers: { ...TUS } },
    {
      name: 'tus PATCH',
      method: 'PATCH',
      path: uploadPath,
      headers: { ...TUS, 'Upload-Offset': '4', 'Content-Type': 'application/offset+octet-stream' },
      body: Buffer.from('XX'),
    },
    { name: 'tus DELETE', method: 'DELETE', path: uploadPath, headers: { ...TUS } },
    { name: 'files list', method: 'GET', path: '/v1/files/all' },
    { name: 'file metadata', method: 'GET', path: `/v1/files/metadata/${fileKey}` },
    { name: 'file delete', method: 'DELETE', path: `/v1/files/${fileKey}` },
    { name: 'usage', method: 'GET', path: '/v1/usage' },
    { name: 'generate-token', method: 'POST', path: '/v1/files/generate-token?user_id=alice' },
    ...originalApi('init', { files: [{ name: 'x.bin', size: 10 }] }),
    ...originalApi('part', { uploadId: uploadPath.split('/').pop(), partNumber: 5, chunkBase64: 'WFg=' }),
    ...originalApi('complete', { uploadId: uploadPath.split('/').pop(), parts: [{ data: 'WFg=' }] }),
  ];
}

/** The original server's upload calls (routes/legacy-uploads.ts), as its clients send them. */
function originalApi(call: string, body: unknown): Route[] {
  return [{ name: `original ${call}`, method: 'POST', path: `/v1/files/${call}`, headers: { 'Content-Type': 'application/json' }, body: Buffer.from(JSON.stringify(body)) }];
}

export function send(base: string, route: Route, auth: Headers): Promise<Response> {
  return fetch(`${base}${route.path}`, { method: route.method, headers: { ...route.headers, ...auth }, body: route.body ? new Uint8Array(route.body) : null });
}

export interface AliceAndBob {
  server: TestServer;
  alice: Headers;
  bob: Headers;
  uploadUrl: string;
  fileKey: string;
  fileBytes: Buffer;
  routes: Route[];
  /** Alice's upload, file and usage are exactly as `before` left them; nothing else was created. */
  aliceUntouched(): Promise<void>;
  /** Every route answers 401 with `code` to `auth`. */
  refuseEverywhere(auth: Headers, code: string, what: string): Promise<void>;
}

/** Called inside a describe: its `before` starts the server and fills the fields in, its `after` stops it. */
export function aliceAndBob(): AliceAndBob {
  const f = {} as AliceAndBob;

  before(async () => {
    const server = await startTestServer();
    const alice = { Authorization: `Bearer ${await server.token('alice')}` };
    const bob = { Authorization: `Bearer ${await server.token('bob')}` };
    // Alice owns one unfinished upload (4 of 10 bytes) and one finished file.
    const created = await createUpload(server.url, alice, 10, { filename: 'part.bin' });
    assert.equal(created.status, 201);
    const uploadUrl = created.headers.get('location')!;
    assert.equal((await patchUpload(uploadUrl, alice, 0, Buffer.from('abcd'))).status, 204);
    const fileBytes = randomBytes(2000);
    const { done } = tusUpload({ endpoint: server.url, headers: alice, data: fileBytes, metadata: { filename: 'secret.txt' } });
    const fileKey = (await done).fileKey!;
    Object.assign(f, { server, alice, bob, uploadUrl, fileKey, fileBytes, routes: everyRoute(uploadUrl, fileKey) });
  });
  after(() => f.server.stop());

  f.aliceUntouched = async () => {
    const { server, alice, uploadUrl, fileKey, fileBytes } = f;
    const head = await headUpload(uploadUrl, alice);
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('upload-offset'), '4');
    const id = uploadUrl.split('/').pop()!;
    assert.equal((await server.uploadBytes(id))?.toString(), 'abcd');
    const meta = await fetch(`${server.url}/v1/files/metadata/${fileKey}`, { headers: alice });
    assert.equal(meta.status, 200);
    assert.ok((await server.readStored(fileKey))?.equals(fileBytes));
    const usage = await (await fetch(`${server.url}/v1/usage`, { headers: alice })).json();
    assert.deepEqual({ used: usage.used_bytes, reserved: usage.reserved_bytes }, { used: 2000, reserved: 10 });
    assert.equal(await recordCount(server, 'SELECT count(*) AS n FROM uploads'), 1, 'no upload was created');
    assert.equal(await recordCount(server, 'SELECT count(*) AS n FROM files'), 1, 'no file was created or removed');
  };

  f.refuseEverywhere = async (auth, code, what) => {
    for (const route of f.routes) {
      await expectProblem(await send(f.server.url, route, auth), 401, code, `${what} / ${route.name}`, route.method);
    }
  };
  return f;
}
