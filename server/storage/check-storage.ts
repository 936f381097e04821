// Records against stored bytes, all of them at once (the operator's `npm run check-storage`; the
// server checks one file per download, storage/damage.ts). Works the same on both backends through
// Storage.listFiles/statFile, and is safe beside a running server:
// - storage is listed first, the records read after, so a file committed meanwhile has its record;
//   records newer than the listing are not judged by it;
// - every finding is confirmed with a fresh statFile before anything is marked or removed;
// - bytes without a record are removed only when older than `orphanMinAgeMs` (a commit in flight
//   writes its record before its bytes arrive, but a clock may be off), and never when the database
//   holds no file at all (a DATA_DIR paired with the wrong bucket would otherwise lose everything).
import type { Repository } from '../db/contract.ts';
import { damageOf, type FileDamage } from './damage.ts';
import type { Storage } from './types.ts';

export interface StorageCheckOptions {
  repo: Repository;
  storage: Storage;
  now: () => number;
  /** Mark damaged records, clear healed ones, remove old orphan bytes. */
  repair: boolean;
  orphanMinAgeMs: number;
}

export interface Finding {
  key: string;
  problem: 'bytes_without_record' | FileDamage | 'healed';
  recorded_size: number | null;
  stored_size: number | null;
  /** What --repair did: marked, cleared, removed; or why it left it. */
  action: 'marked' | 'cleared' | 'removed' | 'kept_too_recent' | 'kept_no_records' | 'none';
}

export interface StorageCheckReport {
  storage: 'file' | 's3';
  repaired: boolean;
  records: number;
  stored_objects: number;
  findings: Finding[];
  /** used_bytes per user whose figure changes: what GET /v1/usage said before, and says after --repair (or would). */
  usage: Array<{ user_id: string; before: number; after: number }>;
  /** Findings --repair would act on (or did not resolve). */
  unresolved: number;
}

export async function checkStorage(options: StorageCheckOptions): Promise<StorageCheckReport> {
  const { repo, storage, now, repair } = options;
  const listedAt = now();
  const stored = new Map<string, { size: number; modifiedAt: Date }>();
  for await (const file of storage.listFiles()) stored.set(file.key, { size: file.size, modifiedAt: file.modifiedAt });
  const usageBefore = await repo.usageByUser();
  const findings: Finding[] = [];
  let records = 0;
  // What each finding does to used_bytes once marked or cleared (a marked file is not charged).
  const delta = new Map<string, number>();
  const charge = (userId: string, bytes: number): void => void delta.set(userId, (delta.get(userId) ?? 0) + bytes);

  for await (const file of repo.readyFiles()) {
    records++;
    if (file.created_at >= listedAt) continue;
    const listed = stored.get(file.key);
    const listedDamage = damageOf(file.size, listed?.size ?? null);
    if (listedDamage === null && !file.damage) continue;
    // Confirm with a fresh look: the listing may be older than a change to this file.
    const storedSize = (await storage.statFile(file.key))?.size ?? null;
    const damage = damageOf(file.size, storedSize);
    const base = { key: file.key, recorded_size: file.size, stored_size: storedSize };
    if (damage === null) {
      if (!file.damage) continue;
      charge(file.user_id, file.size);
      findings.push({ ...base, problem: 'healed', action: repair && (await repo.clearDamage(file.key)) ? 'cleared' : 'none' });
      continue;
    }
    if (!file.damage) charge(file.user_id, -file.size);
    const marked = repair && (await repo.markDamage(file.key, damage, now()));
    // Already marked with this damage: nothing left to do but the owner's delete.
    findings.push({ ...base, problem: damage, action: marked || file.damage === damage ? 'marked' : 'none' });
  }

  const known = await repo.allFileKeys();
  for (const [key, { size, modifiedAt }] of stored) {
    if (known.has(key)) continue;
    const base = { key, problem: 'bytes_without_record' as const, recorded_size: null, stored_size: size };
    let action: Finding['action'] = 'none';
    if (repair) {
      if (known.size === 0) action = 'kept_no_records';
      else if (now() - modifiedAt.getTime() < options.orphanMinAgeMs) action = 'kept_too_recent';
      else if (!(await repo.getFile(key))) {
        await storage.removeFile(key);
        action = 'removed';
      }
    }
    findings.push({ ...base, action });
  }

  // After --repair, what the database now says; otherwise what it would say.
  const usageAfter = repair ? await repo.usageByUser() : new Map([...usageBefore].map(([user, n]) => [user, n + (delta.get(user) ?? 0)]));
  for (const [user, n] of delta) if (!usageAfter.has(user)) usageAfter.set(user, n);
  const users = new Set([...usageBefore.keys(), ...usageAfter.keys()]);
  const usage = [...users]
    .map((user_id) => ({ user_id, before: usageBefore.get(user_id) ?? 0, after: usageAfter.get(user_id) ?? 0 }))
    .filter((u) => u.before !== u.after)
    .sort((a, b) => a.user_id.localeCompare(b.user_id));
  const unresolved = findings.filter((f) => f.action === 'none' || f.action.startsWith('kept')).length;
  return { storage: storage.kind, repaired: repair, records, stored_objects: stored.size, findings, usage, unresolved };
}
