// An upload that declares no filetype is recorded with the type its extension names (tus-js-client
// against the real server): `.txt` is text/plain, not application/octet-stream. A declared type
// always wins, and an extension nobody knows stays application/octet-stream.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { tusUpload } from '../helpers/tus.ts';

describe('content type from the extension when none is declared', () => {
  let server: TestServer;
  let auth: Record<string, string>;
  before(async () => {
    server = await startTestServer();
    auth = { Authorization: `Bearer ${await server.token('gus')}` };
  });
  after(() => server.stop());

  async function recordedType(filename: string, filetype?: string): Promise<string> {
    const metadata: Record<string, string> = { filename, ...(filetype === undefined ? {} : { filetype }) };
    const key = (await tusUpload({ endpoint: server.url, headers: auth, data: Buffer.from('plain words\n'), metadata }).done).fileKey!;
    const res = await fetch(`${server.url}/v1/files/metadata/${encodeURIComponent(key)}`, { headers: auth });
    assert.equal(res.status, 200);
    return ((await res.json()) as { content_type: string }).content_type;
  }

  for (const [filename, filetype, expected] of [
    ['notes.txt', undefined, 'text/plain'],
    ['NOTES.TXT', '', 'text/plain'],
    ['table.csv', undefined, 'text/csv'],
    ['data.json', undefined, 'application/json'],
    ['page.html', undefined, 'text/html'],
    ['notes.txt', 'text/markdown', 'text/markdown'],
    ['mystery.qqq', undefined, 'application/octet-stream'],
    ['no-extension', undefined, 'application/octet-stream'],
  ] as const) {
    test(`${filename} declared ${filetype === undefined ? 'without a type' : JSON.stringify(filetype)} → ${expected}`, async () => {
      assert.equal(await recordedType(filename, filetype), expected);
    });
  }
});
