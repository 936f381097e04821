// What server/serve.mjs (`npm start`) and deploy/stream-line.service run is the build (tsc with
// tsconfig.build.json), not the TypeScript the other tests run through tsx. Build it into a
// directory of its own inside the checkout (node_modules and PROJECT_ROOT are found by walking
// up, as from dist/) and run a whole upload through it as a separate process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT, SERVICE_TOKEN, spawnServer, tempDir, type SpawnedServer } from '../helpers/server.ts';
import { createUpload, patchUpload } from '../helpers/tus.ts';

describe('the build that the server runs from', () => {
  const outDir = path.join(ROOT, 'test-artifacts', `build-${process.pid}`);
  let server: SpawnedServer;
  let dataDir: string;

  before(async () => {
    mkdirSync(path.dirname(outDir), { recursive: true });
    const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', outDir], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(tsc.status, 0, `tsc -p tsconfig.build.json failed:\n${tsc.stdout}${tsc.stderr}`);
    dataDir = tempDir('sl-build-');
    server = await spawnServer(dataDir, {}, 'file', path.join(outDir, 'server/main.js'));
  });
  after(async () => {
    await server?.kill();
    rmSync(outDir, { recursive: true, force: true });
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test('compiles every module to plain JavaScript, with no .ts import left', () => {
    assert.ok(existsSync(path.join(outDir, 'server/main.js')));
    assert.ok(existsSync(path.join(outDir, 'hooks/finalize.js')));
    // Node would refuse a '.ts' specifier at run time; rewriteRelativeImportExtensions must have rewritten all.
    const grep = spawnSync('grep', ['-rlE', `from '\\.{1,2}/[^']*\\.ts'`, outDir], { encoding: 'utf8' });
    assert.equal(grep.stdout, '', 'no compiled file imports a .ts path');
  });

  test('serves an upload end to end, the web page and the API document', async () => {
    const minted = await fetch(`${server.url}/v1/files/generate-token?user_id=alice`, { method: 'POST', headers: { 'X-Service-Token': SERVICE_TOKEN } });
    assert.equal(minted.status, 200);
    const headers = { Authorization: `Bearer ${((await minted.json()) as { token: string }).token}` };
    const data = randomBytes(256 * 1024 + 7);
    const created = await createUpload(server.url, headers, data.length, { filename: 'built.bin' });
    assert.equal(created.status, 201, await created.text());
    const location = new URL(created.headers.get('location')!, server.url).href;
    const patched = await patchUpload(location, headers, 0, data);
    assert.ok(patched.status === 200 || patched.status === 204, `final PATCH: ${patched.status} ${await patched.text()}`);
    const files = await fetch(`${server.url}/v1/files/all`, { headers });
    assert.equal(files.status, 200);
    const listed = (await files.json()) as { files: Array<{ sha256: string; size: number }> };
    assert.deepEqual(listed.files.map((f) => [f.sha256, f.size]), [[createHash('sha256').update(data).digest('hex'), data.length]]);

    // The page's files are found from dist/ too (server/paths.ts), and the OpenAPI document builds.
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type')!, /^text\/html/);
    const doc = await fetch(`${server.url}/docs/openapi.json`);
    assert.equal(doc.status, 200);
    assert.ok(((await doc.json()) as { paths: object }).paths);
  });
});
