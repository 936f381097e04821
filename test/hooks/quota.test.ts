// The quota arithmetic (hooks/quota.ts) against a real SQLite database: what a creation reserves,
// what a PATCH of a deferred-length upload claims, and what a write settles to, each from a table
// of the user's state (bytes stored, other uploads' reservations) and the request.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { claimForPatch, reservationIsFinal, reserveAtCreation, settleReservation, type CreationRequest, type PatchRequest, type QuotaDeps } from '../../hooks/quota.ts';
import type { UploadMetadata } from '../../hooks/metadata.ts';
import { openDb } from '../../server/db/open.ts';
import type { Repository } from '../../server/db/contract.ts';
import type { FileRow } from '../../server/db/repo.ts';
import { createSqliteRepository } from '../../server/db/sqlite-repository.ts';
import { AppError } from '../../server/errors.ts';
import { tempDir } from '../helpers/server.ts';

const QUOTA = 1000;
const USER = 'ana';

/** A user who already stores `stored` bytes and holds `others` in other unfinished uploads. */
async function userWith(stored: number, others: number[], limits: Partial<QuotaDeps> = {}): Promise<QuotaDeps & { repo: Repository }> {
  const repo = createSqliteRepository(openDb(tempDir('sl-quota-')), { webhookUrls: [], now: () => 1_000_000 });
  const deps = { repo, quotaBytes: QUOTA, maxUploadBytes: 10_000, maxUnfinishedUploads: 10, now: () => 1_000_000, ...limits };
  if (stored > 0) await repo.replaceUploadWithFile(storedFile(stored));
  for (const [i, bytes] of others.entries()) {
    await reserveAtCreation({ ...deps, maxUnfinishedUploads: Infinity, quotaBytes: Infinity }, meta, { uploadId: id(`o${i}`), length: bytes, bodyLength: null, hasBody: false });
  }
  return deps;
}

const meta: UploadMetadata = { userId: USER, filename: 'a.bin', folder: 'main', contentType: 'application/octet-stream', sha256: null };

function id(seed: string): string {
  return seed.padEnd(32, '0').replace(/[^0-9a-f]/g, 'a');
}

function storedFile(size: number): FileRow {
  return {
    key: `users/${USER}/2026/01/01/${id('f')}.bin`, user_id: USER, upload_id: id('f'), folder: 'main', filename: 'f.bin',
    content_type: 'application/octet-stream', size, sha256: '0'.repeat(64), created_at: 0, state: 'ready',
    detected_type: null, category: 'other', scan_status: null, scan_signature: null, scanned_at: null,
  };
}

async function refusal(run: () => Promise<unknown>): Promise<string | null> {
  try {
    await run();
    return null;
  } catch (error) {
    assert.ok(error instanceof AppError, String(error));
    return error.code;
  }
}

describe('quota arithmetic', () => {
  test('a creation reserves its length, its body, nothing, or the room left', async () => {
    const cases: [name: string, stored: number, others: number[], req: Omit<CreationRequest, 'uploadId'>, limits: Partial<QuotaDeps>, expected: number | string][] = [
      ['known length that fits', 0, [], { length: 400, bodyLength: null, hasBody: false }, {}, 400],
      ['known length filling the quota exactly', 300, [200], { length: 500, bodyLength: null, hasBody: false }, {}, 500],
      ['known length one byte over', 300, [200], { length: 501, bodyLength: null, hasBody: false }, {}, 'quota_exceeded'],
      ['known length with a body: the length, not the body', 0, [], { length: 400, bodyLength: 100, hasBody: true }, {}, 400],
      ['deferred length without a body: nothing yet', 900, [100], { length: null, bodyLength: null, hasBody: false }, {}, 0],
      ['deferred length, body of known size', 100, [], { length: null, bodyLength: 250, hasBody: true }, {}, 250],
      ['deferred length, body of known size over the room', 100, [700], { length: null, bodyLength: 250, hasBody: true }, {}, 'quota_exceeded'],
      ['deferred length, chunked body: the room left', 100, [300, 50], { length: null, bodyLength: null, hasBody: true }, {}, 550],
      ['a final upload reserves what it is told (its partial uploads hold the bytes)', 0, [600], { length: 600, bodyLength: null, hasBody: false, reserve: 0 }, {}, 0],
      ['the count of unfinished uploads is full', 0, [1, 1], { length: 1, bodyLength: null, hasBody: false }, { maxUnfinishedUploads: 2 }, 'too_many_unfinished_uploads'],
    ];
    for (const [name, stored, others, req, limits, expected] of cases) {
      const deps = await userWith(stored, others, limits);
      const before = await deps.repo.usage(USER);
      let reserved: number | undefined;
      const code = await refusal(async () => {
        reserved = (await reserveAtCreation(deps, meta, { uploadId: id('new'), ...req })).reserved_bytes;
      });
      if (typeof expected === 'string') {
        assert.equal(code, expected, name);
        assert.deepEqual(await deps.repo.usage(USER), before, `${name}: nothing reserved`);
        assert.equal(await deps.repo.getUpload(id('new')), undefined, `${name}: no row`);
      } else {
        assert.equal(code, null, name);
        assert.equal(reserved, expected, name);
        assert.equal((await deps.repo.getUpload(id('new')))?.reserved_bytes, expected, `${name}: stored`);
        assert.equal((await deps.repo.usage(USER)).reserved_bytes, before.reserved_bytes + expected, `${name}: counted`);
      }
    }
  });

  test('a PATCH of a deferred-length upload claims what it may write, never less than it holds', async () => {
    const cases: [name: string, stored: number, others: number[], holds: number, req: PatchRequest, limits: Partial<QuotaDeps>, expected: number | string][] = [
      ['the declared length', 0, [], 10, { declaredLength: 300, contentLength: 40 }, {}, 300],
      ['the declared length over the room', 500, [], 10, { declaredLength: 600, contentLength: null }, {}, 'quota_exceeded'],
      ['what it holds plus the body', 0, [], 10, { declaredLength: null, contentLength: 40 }, {}, 50],
      ['what it holds plus the body, over the room', 900, [], 10, { declaredLength: null, contentLength: 100 }, {}, 'quota_exceeded'],
      ['a chunked body: the room left', 200, [100], 10, { declaredLength: null, contentLength: null }, {}, 700],
      ['a chunked body with no room beyond what it holds', 600, [390], 10, { declaredLength: null, contentLength: null }, {}, 'quota_exceeded'],
      ['capped at the largest upload', 0, [], 10, { declaredLength: null, contentLength: null }, { maxUploadBytes: 100 }, 100],
      ['a smaller declared length keeps what it holds', 0, [], 80, { declaredLength: 50, contentLength: null }, {}, 80],
    ];
    for (const [name, stored, others, holds, req, limits, expected] of cases) {
      const deps = await userWith(stored, others, limits);
      const row = await reserveAtCreation(deps, meta, { uploadId: id('new'), length: null, bodyLength: holds, hasBody: true });
      let bound: number | undefined;
      const code = await refusal(async () => {
        bound = await claimForPatch(deps, row, req);
      });
      if (typeof expected === 'string') {
        assert.equal(code, expected, name);
        assert.equal((await deps.repo.getUpload(row.id))?.reserved_bytes, holds, `${name}: the claim is unchanged`);
      } else {
        assert.equal(code, null, name);
        assert.equal(bound, expected, name);
        assert.equal((await deps.repo.getUpload(row.id))?.reserved_bytes, expected, `${name}: stored`);
      }
    }
  });

  test('a PATCH of a known-length upload claims nothing: its length is its bound', async () => {
    const deps = await userWith(0, []);
    const row = await reserveAtCreation(deps, meta, { uploadId: id('new'), length: 700, bodyLength: null, hasBody: false });
    assert.equal(await claimForPatch(deps, row, { declaredLength: null, contentLength: 999 }), 700);
    assert.equal((await deps.repo.getUpload(row.id))?.reserved_bytes, 700);
  });

  test('after a write the reservation becomes the declared length, or the bytes stored', async () => {
    const cases: [name: string, stored: { offset: number; size: number | undefined }, reserved: number, length: number | null][] = [
      ['length still deferred: the bytes stored', { offset: 120, size: undefined }, 120, null],
      ['length declared: the whole length', { offset: 120, size: 400 }, 400, 400],
      ['nothing stored', { offset: 0, size: undefined }, 0, null],
    ];
    for (const [name, stored, reserved, length] of cases) {
      const deps = await userWith(0, []);
      const row = await reserveAtCreation(deps, meta, { uploadId: id('new'), length: null, bodyLength: 500, hasBody: true });
      await settleReservation(deps, row.id, stored);
      const after = (await deps.repo.getUpload(row.id))!;
      assert.deepEqual([after.reserved_bytes, after.length], [reserved, length], name);
      assert.equal((await deps.repo.usage(USER)).reserved_bytes, reserved, `${name}: counted`);
    }
  });

  test('settling can change nothing once the whole length is reserved', async () => {
    const cases: [length: number | null, reserved: number, final: boolean][] = [
      [100, 100, true],
      [100, 0, false],
      [null, 0, false],
      [null, 100, false],
      [0, 0, true],
    ];
    for (const [length, reserved_bytes, final] of cases) {
      assert.equal(reservationIsFinal({ length, reserved_bytes }), final, `length ${length}, reserved ${reserved_bytes}`);
    }
  });
});
