// The repository contract (contract.ts) over the SQLite statements: every method delegates to
// Repo, ScanRepo, LegacyParts or the outbox; no SQL lives here.
//
// A transaction (atomically) closes the connection's gate (sqlite-gate.ts): calls on the outer
// repository wait until it ends, while calls on its `tx` go through. Repo's own transactions nest
// inside it as savepoints.
//
// SQLite serves one instance (the configuration refuses more), so what PostgreSQL shares between
// instances is kept here in memory: the webhook claims, the periodic-job leases, the instances'
// heartbeats and who is deleting a file (after a crash, nobody: the next start repairs it all).
import type { Repository } from './contract.ts';
import { LegacyParts } from './legacy-parts.ts';
import type { Db } from './open.ts';
import { Repo } from './repo.ts';
import { ScanRepo } from './scan-repo.ts';
import { createOutbox } from './outbox.ts';
import { gateOf } from './sqlite-gate.ts';

export interface SqliteRepositoryOptions {
  webhookUrls: readonly string[];
  now: () => number;
  /** Wakes the dispatcher after an event was emitted (a hint: also after a transaction that then rolled back). */
  onEmit?: () => void;
}

export function createSqliteRepository(db: Db, options: SqliteRepositoryOptions): Repository {
  const gate = gateOf(db);
  const repo = new Repo(db);
  const scans = new ScanRepo(db, repo);
  const parts = new LegacyParts(db);
  const onEmit = options.onEmit ?? (() => {});
  // The wake-up is scheduled inside the transaction but is no part of it: what it runs may use
  // the outer repository (and waits at the gate if the transaction is still open).
  const outbox = createOutbox(db, options.webhookUrls, options.now, () => gate.exit(onEmit));
  const claims = new Map<string, number>(); // `${event} ${url}` → claimed until
  const leases = new Map<string, { holder: string; until: number }>();
  const instances = new Map<string, number>(); // id → seen at
  const deleting = new Map<string, string>(); // file key → instance deleting it
  let committed: Array<() => void> = []; // its afterCommit callbacks
  /** Outside the transaction's context: what runs may use the outer repository. */
  const soon = (fn: () => void) => gate.exit(() => setImmediate(fn));
  let depth = 0;

  function view(inside: boolean): Repository {
    /** Runs a synchronous call once no transaction is open (inside one: at once). */
    const call = async <T>(fn: () => T): Promise<T> => (inside ? fn() : gate.outside(fn));
    const unclaim = (event: number, url: string) => claims.delete(`${event} ${url}`);

    const self: Repository = {
      async atomically(fn) {
        if (inside) {
          const name = `tx_${++depth}`;
          db.exec(`SAVEPOINT ${name}`);
          try {
            const result = await fn(self);
            db.exec(`RELEASE ${name}`);
            return result;
          } catch (error) {
            db.exec(`ROLLBACK TO ${name}`);
            db.exec(`RELEASE ${name}`);
            throw error;
          } finally {
            depth--;
          }
        }
        return gate.closed(async () => {
          try {
            db.exec('BEGIN IMMEDIATE');
            try {
              const result = await fn(txView);
              db.exec('COMMIT');
              for (const callback of committed) soon(callback);
              return result;
            } catch (error) {
              if (db.inTransaction) db.exec('ROLLBACK');
              throw error;
            }
          } finally {
            committed = [];
          }
        });
      },
      afterCommit(fn) {
        if (inside) committed.push(fn);
        else soon(fn);
      },
      ping: () => call(() => repo.ping()),
      usage: (userId) => call(() => repo.usage(userId)),
      reserveUpload: (row, quotaBytes, maxUnfinished) => call(() => repo.reserveUpload(row, quotaBytes, maxUnfinished)),
      setReservation: (id, reservedBytes, length, quotaBytes, now) => call(() => repo.setReservation(id, reservedBytes, length, quotaBytes, now)),
      roomFor: (userId, uploadId, quotaBytes) => call(() => repo.roomFor(userId, uploadId, quotaBytes)),
      usageByUser: () => call(() => repo.usageByUser()),
      getUpload: (id) => call(() => repo.getUpload(id)),
      touchUpload: (id, now) => call(() => repo.touchUpload(id, now)),
      deleteUpload: (id) => call(() => repo.deleteUpload(id)),
      setUploadHead: (id, head) => call(() => repo.setUploadHead(id, head)),
      setUploadType: (id, detectedType) => call(() => repo.setUploadType(id, detectedType)),
      idleUploads: (touchedBefore, limit) => call(() => repo.idleUploads(touchedBefore, limit)),
      knownUploadIds: () => call(() => repo.knownUploadIds()),
      unfinishedUploadIds: () => call(() => repo.unfinishedUploadIds()),
      markPartialUpload: (id) => call(() => repo.markPartialUpload(id)),
      isPartialUpload: (id) => call(() => repo.isPartialUpload(id)),
      saveDigestCheckpoint: (uploadId, offset, state) => call(() => repo.saveDigestCheckpoint(uploadId, offset, state)),
      digestCheckpoints: (uploadId, atMost) => call(() => repo.digestCheckpoints(uploadId, atMost)),
      pruneDigestCheckpoints: (uploadId, keep) => call(() => repo.pruneDigestCheckpoints(uploadId, keep)),
      replaceUploadWithFile: (file) => call(() => repo.atomically(() => repo.replaceUploadWithFile(file))),
      getFile: (key) => call(() => repo.getFile(key)),
      getFileByUploadId: (uploadId) => call(() => repo.getFileByUploadId(uploadId)),
      setFileState: (key, state) => call(() => repo.setFileState(key, state)),
      deleteFile: (key) => call(() => repo.deleteFile(key)),
      filesInTransition: () => call(() => repo.filesInTransition()),
      listFiles: (q) => call(() => repo.listFiles(q)),
      markDamage: (key, damage, now) => call(() => repo.markDamage(key, damage, now)),
      clearDamage: (key) => call(() => repo.clearDamage(key)),
      countDamagedFiles: () => call(() => repo.countDamagedFiles()),
      async *readyFiles() {
        // The statement's cursor cannot stay open across awaits of other requests: read it whole.
        yield* await call(() => [...repo.readyFiles()]);
      },
      allFileKeys: () => call(() => repo.allFileKeys()),
      scans: {
        enqueue: (key, now) => call(() => scans.enqueue(key, now)),
        take: (now) => call(() => scans.take(now)),
        renew: () => Promise.resolve(),
        nextRunAt: () => call(() => scans.nextRunAt()),
        release: (key) => call(() => scans.release(key)),
        postpone: (key, runAt, error) => call(() => scans.postpone(key, runAt, error)),
        record: (key, verdict, signature, now) => call(() => scans.record(key, verdict, signature, now)),
        resetInterrupted: () => call(() => scans.resetInterrupted()),
        backfill: (now) => call(() => scans.backfill(now)),
        retryNow: (now) => call(() => scans.retryNow(now)),
        depth: () => call(() => scans.depth()),
        job: (key) => call(() => scans.job(key)),
      },
      legacyParts: {
        get: (uploadId) => call(() => parts.get(uploadId)),
        set: (uploadId, part) => call(() => parts.set(uploadId, part)),
        fileOfUpload: (uploadId) => call(() => parts.fileOfUpload(uploadId)),
      },
      outbox: {
        emit: options.webhookUrls.length === 0 ? async () => {} : (type, subject, data) => call(() => outbox.emit(type, subject, data)),
        dueHeads: (url, now, limit) => call(() => outbox.dueHeads(url, now, limit)),
        claimDue: (url, now, limit, leaseMs) =>
          call(() => {
            const heads = outbox.dueHeads(url, now, limit + claims.size);
            const free = heads.filter((d) => (claims.get(`${d.event} ${d.url}`) ?? -Infinity) <= now).slice(0, limit);
            for (const d of free) claims.set(`${d.event} ${d.url}`, now + leaseMs);
            return free;
          }),
        delivered: (deliveries) =>
          call(() => {
            outbox.deliveredAll(deliveries);
            for (const { event, url } of deliveries) unclaim(event, url);
          }),
        unclaim: async (deliveries) => {
          for (const { event, url } of deliveries) unclaim(event, url);
        },
        retryLater: (delivery, nextAttemptAt, error) =>
          call(() => (unclaim(delivery.event, delivery.url), outbox.retryLater(delivery, nextAttemptAt, error))),
        dead: (event, url, error) => call(() => (unclaim(event, url), outbox.dead(event, url, error))),
        nextDueAt: (url) => call(() => outbox.nextDueAt(url)),
        counts: () => call(() => outbox.counts()),
        prune: (deliveredBefore, deadBefore, limit) => call(() => outbox.prune(deliveredBefore, deadBefore, limit)),
        dropPendingExcept: (urls) => call(() => outbox.dropPendingExcept(urls)),
      },
      leases: {
        acquire: async (name, holder, now, leaseMs) => {
          const lease = leases.get(name);
          if (lease && lease.holder !== holder && lease.until > now) return false;
          leases.set(name, { holder, until: now + leaseMs });
          return true;
        },
        release: async (name, holder) => {
          if (leases.get(name)?.holder === holder) leases.delete(name);
        },
      },
      instances: {
        beat: async (id, now) => void instances.set(id, now),
        seenSince: async (own, since) => new Set([...instances].filter(([id, seen]) => id !== own && seen >= since).map(([id]) => id)),
        leave: async (id) => void instances.delete(id),
      },
      markDeleting: (key, instanceId) =>
        call(() => {
          repo.setFileState(key, 'deleting');
          if (repo.getFile(key)) deleting.set(key, instanceId);
        }),
      takeOverDeletion: (key, instanceId, previous) =>
        call(() => {
          if (repo.getFile(key)?.state !== 'deleting' || (deleting.get(key) ?? null) !== previous) return false;
          deleting.set(key, instanceId);
          return true;
        }),
      deletionOwners: () =>
        call(() => {
          // A record gone (deleted, or never there) takes its mark with it, as PostgreSQL's cascade does.
          for (const key of deleting.keys()) if (repo.getFile(key)?.state !== 'deleting') deleting.delete(key);
          return new Map(deleting);
        }),
    };
    return self;
  }

  const txView = view(true);
  return view(false);
}
