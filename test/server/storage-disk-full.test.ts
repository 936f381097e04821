// A full disk (a real tmpfs as DATA_DIR): 507 with a problem code, the upload stays resumable once
// space returns, SQLite stays intact, and the server keeps serving everything else.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { startTestServer, tempDir } from '../helpers/server.ts';
import { createUpload, headUpload, patchUpload, tusUpload } from '../helpers/tus.ts';

const MiB = 1024 * 1024;

function mountTmpfs(dir: string, size: string): string | null {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' });
  return r.status === 0 ? null : r.stderr.trim() || `mount exited with ${r.status}`;
}

describe('disk full', () => {
  test('ENOSPC mid-PATCH answers 507 and the upload resumes once space returns', async (t) => {
    const mountPoint = tempDir('sl-tmpfs-');
    const refused = mountTmpfs(mountPoint, '16m');
    if (refused) {
      // Mounting needs root (CI and the project's machines run as root).
      t.skip(`cannot mount a tmpfs here: ${refused}`);
      return;
    }
    try {
      const dataDir = path.join(mountPoint, 'data');
      mkdirSync(dataDir);
      const server = await startTestServer({ dataDir });
      try {
        const auth = { Authorization: `Bearer ${await server.token('liam')}` };
        const small = randomBytes(100_000);
        const { fileKey } = await tusUpload({ endpoint: server.url, headers: auth, data: small, metadata: { filename: 'before.bin' } }).done;
        // Fill most of the disk with something that is not ours.
        const filler = path.join(mountPoint, 'filler');
        writeFileSync(filler, Buffer.alloc(10 * MiB));

        const data = randomBytes(8 * MiB);
        const url = (await createUpload(server.url, auth, data.length, { filename: 'big.bin' })).headers.get('location')!;
        const full = await patchUpload(url, auth, 0, data);
        assert.equal(full.status, 507);
        assert.equal(full.headers.get('content-type'), 'application/problem+json');
        assert.equal(full.headers.get('retry-after'), '60');
        assert.equal((await full.json()).code, 'insufficient_storage');

        // Everything else keeps working.
        assert.equal((await fetch(`${server.url}/v1/files/metadata/${fileKey}`, { headers: auth })).status, 200);
        const head = await headUpload(url, auth);
        assert.equal(head.status, 200);
        const offset = Number(head.headers.get('upload-offset'));
        assert.ok(offset < data.length);

        rmSync(filler);
        const resumed = await patchUpload(url, auth, offset, data.subarray(offset));
        assert.equal(resumed.status, 200);
        assert.equal((await resumed.json()).sha256, createHash('sha256').update(data).digest('hex'));
        const usage = await (await fetch(`${server.url}/v1/usage`, { headers: auth })).json();
        assert.deepEqual([usage.used_bytes, usage.reserved_bytes], [small.length + data.length, 0]);
      } finally {
        await server.stop({ keepData: true });
      }
      const db = new Database(path.join(dataDir, 'stream-line.sqlite'), { readonly: true });
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      db.close();
    } finally {
      spawnSync('umount', [mountPoint]);
      rmSync(mountPoint, { recursive: true, force: true });
    }
  });
});
