// The SDK declares a file's type from its name's extension when the caller gave none (a path, or
// bytes with a filename), as Upload-Metadata `filetype`; a type the caller gave always wins. Seen
// on the wire through a recording proxy in front of a real server.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createUserSession } from '../../clients/sdk/node.ts';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { startRecordingProxy } from '../helpers/recording-proxy.ts';

describe('SDK: filetype from the extension', () => {
  let server: TestServer;
  let proxy: Awaited<ReturnType<typeof startRecordingProxy>>;
  let token: string;
  before(async () => {
    server = await startTestServer();
    proxy = await startRecordingProxy({ target: server.url });
    token = await server.token('tara');
  });
  after(async () => {
    await proxy.close();
    await server.stop();
  });

  /** The filetype the creation request declared for `filename`, or undefined. */
  function declaredType(filename: string): string | undefined {
    const creation = proxy.requests.find((r) => r.method === 'POST' && r.path === '/v1/uploads' &&
      String(r.headers['upload-metadata']).split(',').some((pair) => pair === `filename ${Buffer.from(filename).toString('base64')}`));
    assert.ok(creation, `no creation request for ${filename}`);
    const pair = String(creation.headers['upload-metadata']).split(',').find((p) => p.startsWith('filetype '));
    return pair === undefined ? undefined : Buffer.from(pair.slice('filetype '.length), 'base64').toString('utf8');
  }

  test('a path, bytes with a filename, and a declared type', async () => {
    const session = createUserSession({ baseUrl: proxy.url, token });
    const file = path.join(tempDir('sl-sdk-type-'), 'notes.txt');
    writeFileSync(file, 'a few words\n');
    const fromPath = await session.upload(file);
    assert.equal(declaredType('notes.txt'), 'text/plain');
    assert.equal(fromPath.content_type, 'text/plain');

    await session.upload(Buffer.from('a,b\n1,2\n'), { filename: 'table.csv' });
    assert.equal(declaredType('table.csv'), 'text/csv');
    await session.upload(Buffer.from('# title\n'), { filename: 'readme.txt', filetype: 'text/markdown' });
    assert.equal(declaredType('readme.txt'), 'text/markdown');
    await session.upload(Buffer.from('?'), { filename: 'mystery.qqq' });
    assert.equal(declaredType('mystery.qqq'), undefined, 'nothing declared when the extension names nothing');
  });
});
