// The OpenAPI document generated from the routes plus the tus endpoint and /metrics, checked by an
// OpenAPI validator; the /docs page with its bundled assets; and the validators that produced the
// document answering with our problem codes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { compileErrors, validate } from '@readme/openapi-parser';
import { ERROR_CODES } from '../../server/errors.ts';
import { expectProblem } from '../helpers/problem.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

interface Operation {
  summary?: string;
  parameters?: Array<{ name: string; in: string; schema?: Record<string, unknown> }>;
  requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown>; required?: string[] } }> };
  responses: Record<string, Response>;
}
interface Response {
  headers?: Record<string, unknown>;
  content?: Record<string, { schema: { allOf?: Array<{ properties?: { code?: { enum?: string[] } } }> } }>;
}
type Document = { openapi: string; paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, unknown> } };

describe('OpenAPI and /docs', () => {
  let server: TestServer;
  let auth: Record<string, string>;
  before(async () => {
    server = await startTestServer();
    auth = { Authorization: `Bearer ${await server.token('otto')}` };
  });
  after(() => server.stop());

  test('the document describes the files API from the route definitions', async () => {
    const res = await fetch(`${server.url}/docs/openapi.json`);
    assert.equal(res.status, 200);
    const doc = (await res.json()) as Document;
    assert.match(doc.openapi, /^3\.1\./);
    const expected: Array<[string, string]> = [
      ['/v1/files/all', 'get'],
      ['/v1/files/metadata/{key}', 'get'],
      ['/v1/files/{key}', 'delete'],
      ['/v1/usage', 'get'],
      ['/v1/files/signed-url', 'get'],
      ['/get/{encoded}', 'get'],
      ['/v1/files/batch-download', 'post'],
      ['/v1/files/batch-download/{token}', 'get'],
      ['/v1/files/generate-token', 'post'],
      ['/healthz', 'get'],
    ];
    for (const [path, method] of expected) assert.ok(doc.paths[path]?.[method], `${method.toUpperCase()} ${path} is described`);

    // Parameters come from the validators the routes run.
    const list = doc.paths['/v1/files/all']!.get!;
    assert.deepEqual(list.parameters!.filter((p) => p.in === 'query').map((p) => p.name).sort(), ['cursor', 'folder', 'limit', 'user_id']);
    const ttl = doc.paths['/v1/files/signed-url']!.get!.parameters!.find((p) => p.name === 'ttl')!;
    assert.match(String(ttl.schema?.pattern), /\\d/);
    const body = doc.paths['/v1/files/batch-download']!.post!.requestBody!.content['application/json']!.schema;
    assert.ok(body.properties?.keys && body.properties?.name);
    assert.ok(doc.components.schemas.FileRecord && doc.components.schemas.Problem);
  });

  test('the document is valid OpenAPI and describes every route, tus and /metrics included', async () => {
    const doc = (await (await fetch(`${server.url}/docs/openapi.json`)).json()) as Document;
    const result = await validate(structuredClone(doc) as never);
    assert.ok(result.valid, compileErrors(result));
    assert.deepEqual(result.warnings, []);

    const expected: Array<[string, string]> = [
      ['/v1/uploads', 'options'],
      ['/v1/uploads', 'post'],
      ['/v1/uploads/{id}', 'head'],
      ['/v1/uploads/{id}', 'patch'],
      ['/v1/uploads/{id}', 'delete'],
      ['/metrics', 'get'],
    ];
    for (const [path, method] of expected) assert.ok(doc.paths[path]?.[method], `${method.toUpperCase()} ${path} is described`);
    const post = doc.paths['/v1/uploads']!.post!;
    for (const name of ['Tus-Resumable', 'Upload-Length', 'Upload-Defer-Length', 'Upload-Metadata']) {
      assert.ok(post.parameters!.some((p) => p.in === 'header' && p.name === name), `POST /v1/uploads takes ${name}`);
    }
    assert.ok(post.responses['201']!.headers!.Location);
    assert.ok(doc.paths['/v1/uploads/{id}']!.patch!.responses['200']!.headers!['X-File-Key']);

    // Each problem response names the codes it may carry, and each has that status in errors.ts.
    const tusCodes = new Set<string>();
    for (const item of [doc.paths['/v1/uploads']!, doc.paths['/v1/uploads/{id}']!]) {
      for (const operation of Object.values(item)) {
        for (const [status, response] of Object.entries(operation.responses ?? {})) {
          const codes = response.content?.['application/problem+json']?.schema.allOf?.[1]?.properties?.code?.enum ?? [];
          for (const code of codes) {
            assert.equal(ERROR_CODES[code as keyof typeof ERROR_CODES]?.status, Number(status), `${code} answers ${status}`);
            tusCodes.add(code);
          }
        }
      }
    }
    for (const code of ['quota_exceeded', 'upload_too_large', 'checksum_mismatch', 'offset_mismatch', 'not_found', 'upload_locked', 'precondition_failed']) {
      assert.ok(tusCodes.has(code), `the tus endpoint's ${code} is described`);
    }

    // What the live discovery answers is what the document says it answers.
    const options = await fetch(`${server.url}/v1/uploads`, { method: 'OPTIONS' });
    const documented = Object.keys(doc.paths['/v1/uploads']!.options!.responses[String(options.status)]?.headers ?? {}).map((h) => h.toLowerCase());
    for (const name of [...options.headers.keys()].filter((h) => h.startsWith('tus-'))) assert.ok(documented.includes(name), `${name} is documented`);

    // A summary that names a route names one the document has (e.g. /get/{encoded}, not /get/{key}).
    for (const item of Object.values(doc.paths)) {
      for (const operation of Object.values(item)) {
        for (const [, named] of (operation.summary ?? '').matchAll(/\b(?:GET|POST|PATCH|DELETE|HEAD) (\/[^\s)]*)/g)) {
          assert.ok(doc.paths[named!], `${named} (in "${operation.summary}") is a described path`);
        }
      }
    }
  });

  test('the validators answer with the codes of errors.ts', async () => {
    await expectProblem(await fetch(`${server.url}/v1/files/all?limit=0`, { headers: auth }), 400, 'invalid_parameter');
    await expectProblem(await fetch(`${server.url}/v1/files/all?limit=1e3`, { headers: auth }), 400, 'invalid_parameter');
    await expectProblem(await fetch(`${server.url}/v1/files/signed-url?key=x&ttl=abc`, { headers: auth }), 400, 'invalid_parameter');
    await expectProblem(await fetch(`${server.url}/v1/files/signed-url?key=x&disposition=download`, { headers: auth }), 400, 'invalid_parameter');
    const service = { 'X-Service-Token': server.serviceToken };
    await expectProblem(await fetch(`${server.url}/v1/files/generate-token?user_id=a&expires_hours=0`, { method: 'POST', headers: service }), 400, 'invalid_parameter');
    const batch = await fetch(`${server.url}/v1/files/batch-download`, { method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: '{"keys": []}' });
    const problem = await expectProblem(batch, 400, 'invalid_parameter');
    assert.equal(problem!.detail, 'keys must be a non-empty array of file keys');
  });

  test('/docs is a page whose scripts and styles come from this server, not a CDN', async () => {
    const page = await fetch(`${server.url}/docs`);
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.ok(!/\b(src|href)="(https?:)?\/\//.test(html), 'no external script or style');
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    assert.ok(assets.length >= 3);
    for (const asset of assets) {
      const res = await fetch(`${server.url}${asset}`);
      assert.equal(res.status, 200, asset);
      assert.ok((await res.arrayBuffer()).byteLength > 50, asset);
    }
  });
});
