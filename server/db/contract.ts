// The repository contract: every record the server keeps, behind named asynchronous methods, one
// interface for both databases. server/db/sqlite-repository.ts implements it over the SQLite
// statements (repo.ts, scan-repo.ts, legacy-parts.ts, outbox.ts); server/db/pg/ implements
// it on PostgreSQL. test/server/db/repository-contract.test.ts holds both to the same answers.
//
// Asynchronous because PostgreSQL is a network away; SQLite's implementation answers at once.
// A change and the event that reports it commit together: run both inside atomically(), on the
// transaction's repository `tx` it hands to the callback (never on the outer one, which waits for
// the transaction to end), one call at a time: a transaction is one connection, and its nested
// transactions are savepoints that must not interleave.
import type { EventType } from './events.ts';
import type { LegacyPart } from './legacy-parts.ts';
import type { Category, DigestCheckpoint, FileDamage, FileRow, FileState, ListQuery, UploadRow, Usage } from './repo.ts';
import type { TakenJob, VerdictStatus } from './scan-repo.ts';
import type { DeliveryRef, PendingDelivery } from './outbox.ts';

export type { Category, DigestCheckpoint, FileDamage, FileRow, FileState, LegacyPart, ListQuery, DeliveryRef, PendingDelivery, TakenJob, UploadRow, Usage, VerdictStatus };

export type Reservation = 'reserved' | 'quota' | 'count';

/**
 * A call on the outer repository awaited inside atomically() escapes the transaction (on
 * PostgreSQL its write is kept when the transaction rolls back); on SQLite it would wait for the
 * transaction, which waits for it, forever: the SQLite repository refuses it with this message.
 */
export const OUTER_CALL_IN_TRANSACTION = 'called the outer repository inside atomically(): use the `tx` it hands over';

export interface Repository {
  /** Runs `fn` in one transaction on `tx`: everything it writes commits together or not at all. */
  atomically<T>(fn: (tx: Repository) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` soon after the transaction of this `tx` commits, never when it rolls back (on the
   * outer repository: soon). For wake-ups (the scan worker after a job is queued): what `fn` runs
   * sees the commit, and may use the outer repository.
   */
  afterCommit(fn: () => void): void;
  ping(): Promise<boolean>;

  // --- quota (one row of totals per user, kept by the schema) ---
  usage(userId: string): Promise<Usage>;
  /**
   * Inserts the upload if its reservation fits the quota and the user holds fewer than
   * `maxUnfinished` unfinished uploads; otherwise writes nothing and says which limit refused it.
   * Decided under a lock on the user's totals: parallel calls, from any instance, never overshoot.
   */
  reserveUpload(row: UploadRow, quotaBytes: number, maxUnfinished: number): Promise<Reservation>;
  /** Sets a reservation (and the length once declared) if it still fits; shrinking always does. False otherwise, or when the upload is unknown. */
  setReservation(id: string, reservedBytes: number, length: number | null, quotaBytes: number, now: number): Promise<boolean>;
  /** Room left for one upload: quota minus stored bytes and the other uploads' reservations. */
  roomFor(userId: string, uploadId: string, quotaBytes: number): Promise<number>;
  /** Stored bytes charged per user. */
  usageByUser(): Promise<Map<string, number>>;

  // --- unfinished uploads ---
  getUpload(id: string): Promise<UploadRow | undefined>;
  touchUpload(id: string, now: number): Promise<void>;
  deleteUpload(id: string): Promise<void>;
  setUploadHead(id: string, head: Buffer): Promise<void>;
  setUploadType(id: string, detectedType: string | null): Promise<void>;
  idleUploads(touchedBefore: number, limit: number): Promise<UploadRow[]>;
  knownUploadIds(): Promise<Set<string>>;
  unfinishedUploadIds(): Promise<string[]>;
  markPartialUpload(id: string): Promise<void>;
  isPartialUpload(id: string): Promise<boolean>;
  saveDigestCheckpoint(uploadId: string, offset: number, state: Uint8Array): Promise<void>;
  digestCheckpoints(uploadId: string, atMost: number): Promise<DigestCheckpoint[]>;
  pruneDigestCheckpoints(uploadId: string, keep: [number, number]): Promise<void>;

  // --- files ---
  /** The upload's row becomes its file's record in one transaction (quota never counts both). Throws if the upload already became a file. */
  replaceUploadWithFile(file: FileRow): Promise<void>;
  getFile(key: string): Promise<FileRow | undefined>;
  getFileByUploadId(uploadId: string): Promise<FileRow | undefined>;
  setFileState(key: string, state: FileState): Promise<void>;
  deleteFile(key: string): Promise<void>;
  filesInTransition(): Promise<FileRow[]>;
  listFiles(q: ListQuery): Promise<FileRow[]>;
  markDamage(key: string, damage: FileDamage, now: number): Promise<boolean>;
  clearDamage(key: string): Promise<boolean>;
  countDamagedFiles(): Promise<number>;
  /** Every ready record, by key, read in pages (no connection is held between pages). */
  readyFiles(): AsyncIterable<FileRow>;
  allFileKeys(): Promise<Set<string>>;

  readonly scans: ScanJobs;
  readonly legacyParts: LegacyParts;
  readonly outbox: OutboxStore;
  readonly leases: JobLeases;

  // --- several instances (docs/design-several-instances.md) ---
  readonly instances: InstanceRegistry;
  /** Marks the file 'deleting' by `instanceId`, in one transaction: another instance's start-up repair leaves it to that one while it is alive. */
  markDeleting(key: string, instanceId: string): Promise<void>;
  /** The instance deleting each file marked by markDeleting (files marked otherwise have none). */
  deletionOwners(): Promise<Map<string, string>>;
  /**
   * Makes `instanceId` the one finishing a 'deleting' file if `previous` still is (null: none
   * named); true for one caller only, whatever the instances racing for it.
   */
  takeOverDeletion(key: string, instanceId: string, previous: string | null): Promise<boolean>;
}

/** The virus-scan queue (server/db/scan-repo.ts explains what "takeable" means). */
export interface ScanJobs {
  enqueue(key: string, now: number): Promise<void>;
  /**
   * Claims the next due job and marks its file 'scanning' until `now + leaseMs`. Two claimers, on
   * any instances, never take the same job; a claim whose lease ended may be taken again (on
   * SQLite, one instance only, the start-up resetInterrupted() frees it instead).
   */
  take(now: number, leaseMs: number): Promise<TakenJob | undefined>;
  /**
   * Extends the claims on `keys` (jobs this caller is scanning) to `until`, so that a scan longer
   * than one lease is not taken again while it runs, and one whose instance died is taken again
   * soon. A job handed back, postponed or recorded meanwhile stays so. On SQLite (one instance) a
   * claim has no end: nothing to do.
   */
  renew(keys: readonly string[], until: number): Promise<void>;
  nextRunAt(): Promise<number | null>;
  release(key: string): Promise<void>;
  postpone(key: string, runAt: number, error: string): Promise<void>;
  record(key: string, verdict: VerdictStatus, signature: string | null, now: number): Promise<FileRow | undefined>;
  /** Start-up: scans interrupted by a crash wait again (on PostgreSQL only those whose lease ended at `now`). */
  resetInterrupted(now: number): Promise<number>;
  backfill(now: number): Promise<number>;
  retryNow(now: number): Promise<number>;
  depth(): Promise<number>;
  job(key: string): Promise<{ attempts: number; run_at: number; last_error: string | null } | undefined>;
}

export interface LegacyParts {
  get(uploadId: string): Promise<LegacyPart | undefined>;
  set(uploadId: string, part: LegacyPart): Promise<void>;
  fileOfUpload(uploadId: string): Promise<FileRow | undefined>;
}

/** The webhook outbox (outbox.ts explains the head rule and the retention). */
export interface OutboxStore {
  /**
   * Writes the event and one delivery per receiver; call on the `tx` of the change it reports.
   * Without receivers (webhooks off) it writes nothing: an event no one receives is not kept.
   */
  emit(type: EventType, subject: string, data: Record<string, unknown>): Promise<void>;
  dueHeads(url: string, now: number, limit: number): Promise<PendingDelivery[]>;
  /**
   * As dueHeads, and each returned delivery is held by this caller until `now + leaseMs`: another
   * claimer (another instance) skips it meanwhile. delivered/retryLater/dead end the claim.
   */
  claimDue(url: string, now: number, limit: number, leaseMs: number): Promise<PendingDelivery[]>;
  /**
   * Marks deliveries received, all in one transaction: the dispatcher gathers those answered
   * since its last look, so each costs a share of one commit rather than one each.
   */
  delivered(deliveries: readonly DeliveryRef[]): Promise<void>;
  /**
   * Ends claims without an attempt: a stopping dispatcher hands back the deliveries it abandons,
   * so the next one to look (a restart, another instance) sends them at once, not once the lease ends.
   */
  unclaim(deliveries: readonly DeliveryRef[]): Promise<void>;
  retryLater(delivery: Pick<PendingDelivery, 'event' | 'url' | 'subject'>, nextAttemptAt: number, error: string): Promise<void>;
  dead(event: number, url: string, error: string): Promise<void>;
  nextDueAt(url: string): Promise<number | null>;
  counts(): Promise<{ pending: number; dead: number }>;
  prune(deliveredBefore: number, deadBefore: number, limit: number): Promise<number>;
  dropPendingExcept(urls: readonly string[]): Promise<number>;
}

/** Periodic work one instance at a time runs (the expiry sweep). */
export interface JobLeases {
  /** True when `holder` holds `name` until `now + leaseMs` (taken, or renewed); false while another holds it. */
  acquire(name: string, holder: string, now: number, leaseMs: number): Promise<boolean>;
  /** Hands the lease back early (a no-op unless `holder` holds it). */
  release(name: string, holder: string): Promise<void>;
}

/** The instances running on the database, each with a heartbeat (server/instance-heartbeat.ts). */
export interface InstanceRegistry {
  /** Records that instance `id` runs at `now` (at start, then at every heartbeat). */
  beat(id: string, now: number): Promise<void>;
  /** The instances other than `self` seen at or after `since`. */
  seenSince(self: string, since: number): Promise<Set<string>>;
  /** A clean stop: the instance is gone at once instead of when its heartbeat lapses. */
  leave(id: string): Promise<void>;
}
