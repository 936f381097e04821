// Bad Upload-Metadata answered cleanly (hooks/metadata.ts): malformed values, hostile filenames and
// folders, user_id values that are not allowed. Every refusal is problem+json with a stable code and
// leaves no upload behind; a hostile name never reaches the disk outside DATA_DIR.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { badInputServer, walk } from '../helpers/bad-input.ts';
import { createUpload, metadataHeader } from '../helpers/tus.ts';

const KEY_WITHOUT_EXT = /^users\/mallory\/\d{4}\/\d{2}\/\d{2}\/[0-9a-f]{32}$/;

describe('bad input: Upload-Metadata', () => {
  const fixture = badInputServer();

  test('malformed Upload-Metadata: 400 invalid_metadata', async () => {
    const { server, mallory, post, refusedCreation } = fixture;
    const cases: Array<[string, string]> = [
      ['value not base64', 'filename !!!!'],
      ['value length not a multiple of 4', 'filename YWJj='],
      ['duplicate key', 'filename YQ==,filename Yg=='],
      // A space after the comma is tolerated (TUSKit sends it): 'filename YQ==, YQ==' names a key 'YQ=='.
      ['empty key', 'filename YQ==,,other YQ=='],
      ['three tokens', 'filename YQ== YQ=='],
      ['non-ASCII key', 'fïlename YQ=='],
      ['a tab between key and value', 'filename\tYQ=='],
      ['trailing comma', 'filename YQ==,'],
    ];
    for (const [what, header] of cases) {
      await refusedCreation(await post({ ...mallory, 'Upload-Length': '1', 'Upload-Metadata': header }), 400, 'invalid_metadata', what);
    }
    // Valid base64 of bytes that are not UTF-8: the name cannot be recorded faithfully.
    const latin1 = `filename ${Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74]).toString('base64')}`;
    await refusedCreation(await post({ ...mallory, 'Upload-Length': '1', 'Upload-Metadata': latin1 }), 400, 'invalid_metadata', 'not UTF-8');
    const badSha = await createUpload(server.url, mallory, 1, { sha256: 'xyz' });
    await refusedCreation(badSha, 400, 'invalid_metadata', 'sha256 not hex');
    const badType = await createUpload(server.url, mallory, 1, { filetype: 'text/html\r\nX-Evil: 1' });
    await refusedCreation(badType, 400, 'invalid_metadata', 'filetype with CRLF');
  });

  test('filename ../../etc/passwd is recorded as passwd under DATA_DIR; nothing is written outside', async () => {
    const { root, dataDir, server, mallory, post, refusedCreation } = fixture;
    const data = Buffer.from('root:x:0:0:not really\n');
    const cases: Array<[string, string, RegExp]> = [
      ['../../etc/passwd', 'passwd', KEY_WITHOUT_EXT],
      ['..\\..\\windows\\win.ini', 'win.ini', /\.ini$/],
      ['/etc/shadow', 'shadow', KEY_WITHOUT_EXT],
      ['a/../../../../b.txt', 'b.txt', /\.txt$/],
      ['..%2F..%2Fescape', '..%2F..%2Fescape', KEY_WITHOUT_EXT],
    ];
    for (const [filename, recorded, keyShape] of cases) {
      const res = await post({ ...mallory, 'Upload-Length': String(data.length), 'Upload-Metadata': metadataHeader({ filename }), 'Content-Type': 'application/offset+octet-stream' }, data);
      assert.equal(res.status, 201, filename);
      const record = await res.json();
      assert.equal(record.filename, recorded, filename);
      assert.match(record.key, keyShape, filename);
      assert.ok((await server.readStored(record.key))?.equals(data), filename);
    }
    const outside = walk(root).filter((f) => !f.startsWith(path.join('a', 'b', 'data') + path.sep));
    assert.deepEqual(outside, []);
    for (const name of walk(dataDir)) {
      assert.ok(!/passwd|shadow|win\.ini|escape/.test(name), `nothing on disk is named after the client's path: ${name}`);
    }
    for (const filename of ['..', '.', '../', 'dir/', '   ']) {
      await refusedCreation(await createUpload(server.url, mallory, 1, { filename }), 400, 'invalid_metadata', `filename ${JSON.stringify(filename)}`);
    }
  });

  test('filenames and folders with control or bidi-override characters: 400 invalid_metadata', async () => {
    const { server, mallory, refusedCreation } = fixture;
    // U+202E and friends reorder how a name is displayed ("invoice\u202Efdp.exe" shows as
    // "invoiceexe.pdf"): refused like control characters, since a name is shown to other people.
    const names = ['a\nb.txt', 'a\rb.txt', 'a\u0000.txt', 'tab\there.txt', 'bell\u0007', 'del\u007f', 'c1\u0085', 'ls\u2028',
      'invoice\u202efdp.exe', 'embed\u202ax', 'isolate\u2066x\u2069'];
    for (const filename of names) {
      await refusedCreation(await createUpload(server.url, mallory, 1, { filename }), 400, 'invalid_metadata', `filename ${JSON.stringify(filename)}`);
    }
    for (const folder of ['a\nb', 'x\u0000y', 'rtl\u202efdp']) {
      await refusedCreation(await createUpload(server.url, mallory, 1, { folder }), 400, 'invalid_metadata', `folder ${JSON.stringify(folder)}`);
    }
    // Ordinary right-to-left and non-Latin names are fine.
    const ok = await createUpload(server.url, mallory, 0, { filename: 'תמונה שלי.png', folder: 'مجلد/写真' });
    assert.equal(ok.status, 201);
    assert.equal((await ok.json()).filename, 'תמונה שלי.png');
  });

  test('folders with .., empty segments or backslashes: 400 invalid_metadata', async () => {
    const { server, mallory, refusedCreation } = fixture;
    for (const folder of ['../x', 'x/..', 'a/../b', './a', '..', 'a//b', 'a\\b', '..\\x', 'a/ /b']) {
      await refusedCreation(await createUpload(server.url, mallory, 1, { folder }), 400, 'invalid_metadata', `folder ${JSON.stringify(folder)}`);
    }
    const res = await createUpload(server.url, mallory, 0, { folder: '/main/pictures/' });
    assert.equal(res.status, 201);
    assert.equal((await res.json()).folder, 'main/pictures');
  });

  test('user_id values that are not allowed', async () => {
    const { server, mallory, service, post, refusedCreation } = fixture;
    const userIds = ['..', '.', 'a/b', 'a\\b', '../mallory', 'a b', 'ü', 'x'.repeat(129), 'x'.repeat(200)];
    for (const userId of userIds) {
      const res = await createUpload(server.url, service, 1, { user_id: userId });
      await refusedCreation(res, 400, 'invalid_user_id', `service user_id ${JSON.stringify(userId.slice(0, 20))}`);
    }
    // Empty value (`user_id` with no value, or the base64 of nothing) and no user_id at all.
    for (const header of ['user_id', 'user_id ', 'filename YQ==']) {
      await refusedCreation(await post({ ...service, 'Upload-Length': '1', 'Upload-Metadata': header }), 400, 'invalid_user_id', `metadata ${header}`);
    }
    await refusedCreation(await post({ ...service, 'Upload-Length': '1' }), 400, 'invalid_user_id', 'no metadata');
    // A user may not upload for someone else, but naming themselves is harmless.
    await refusedCreation(await createUpload(server.url, mallory, 1, { user_id: 'alice' }), 403, 'forbidden', 'user naming alice');
    await refusedCreation(await createUpload(server.url, mallory, 1, { user_id: '..' }), 403, 'forbidden', 'user naming ..');
    const self = await createUpload(server.url, mallory, 0, { user_id: 'mallory' });
    assert.equal(self.status, 201);
  });
});
