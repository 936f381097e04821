// What a request's asynchronous work carries (server/async-scope.ts): its request id, for every log
// line (server/logging.ts), and the SQLite transactions it is inside, for the connection's gate
// (server/db/sqlite-gate.ts). Both travel in one scope; neither may lose or leak the other.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { OUTER_CALL_IN_TRANSACTION } from '../../server/db/contract.ts';
import { openDb } from '../../server/db/open.ts';
import { createSqliteRepository } from '../../server/db/sqlite-repository.ts';
import { createLogger, withRequestId } from '../../server/logging.ts';
import { tempDir } from '../helpers/server.ts';
import { until } from '../helpers/until.ts';

describe('the request scope', () => {
  const dir = tempDir();
  const db = openDb(dir);
  const repo = createSqliteRepository(db, { webhookUrls: [], now: Date.now });
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger('info', new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  }));
  after(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a request id reaches every line of its request, inside a transaction and after its commit, and no other line', async () => {
    let committed = false;
    const two = Promise.all(['req-a', 'req-b'].map((requestId) => withRequestId(requestId, () => repo.atomically(async (tx) => {
      await tx.ping();
      log.info({ at: 'in transaction' }, requestId);
      // The outer repository inside the transaction is refused (it would wait for itself), request id or not.
      await assert.rejects(repo.ping(), { message: OUTER_CALL_IN_TRANSACTION });
      tx.afterCommit(() => {
        log.info({ at: 'after commit' }, requestId);
        // What runs after the commit is outside the transaction: the outer repository works.
        void repo.ping().then(() => {
          log.info({ at: 'outer call' }, requestId);
          committed = true;
        });
      });
    }))));
    log.info({ at: 'no request' }, 'none');
    await two;
    await until('both outer calls', () => committed && lines.filter((l) => l.at === 'outer call').length === 2);
    for (const line of lines.filter((l) => l.at !== 'no request')) assert.equal(line.request_id, line.msg, JSON.stringify(line));
    assert.equal(lines.filter((l) => l.at === 'in transaction').length, 2);
    assert.equal(lines.filter((l) => l.at === 'after commit').length, 2);
    const outside = lines.find((l) => l.at === 'no request')!;
    assert.ok(!('request_id' in outside), JSON.stringify(outside));
    assert.ok(lines.every((l) => !('transactions' in l) && !('requestId' in l)), 'the scope itself is never logged');
  });
});
