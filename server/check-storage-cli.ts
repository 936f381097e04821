// `npm run check-storage [-- --repair] [--json] [--orphan-min-age-minutes N]`: compares every file
// record with the bytes in storage (local disk or S3, as configured: the same environment as
// `npm start`) and reports bytes without records, records without bytes, sizes that differ, and
// what that does to each user's usage. With --repair it marks damaged records (left out of
// listings and usage, answered file_missing / file_damaged), clears marks whose bytes match again
// and removes orphan bytes older than the minimum age. Opening local storage imports the tus
// upload info that earlier releases kept as `<id>.json` (storage/tus-sidecars.ts), as a server start
// does, with or without --repair. Safe while the server runs.
// Exit: 0 nothing left to do, 1 findings left unrepaired, 2 bad arguments or configuration.
// See docs/storage-check.md.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.ts';
import pino from 'pino';
import { openRecords } from './db/records.ts';
import { createStorage } from './services.ts';
import { checkStorage, type StorageCheckReport } from './storage/check-storage.ts';

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

let args;
try {
  args = parseArgs({
    options: {
      repair: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'orphan-min-age-minutes': { type: 'string', default: '60' },
    },
  }).values;
} catch (error) {
  fail(`${(error as Error).message}\nusage: npm run check-storage -- [--repair] [--json] [--orphan-min-age-minutes N]`);
}
const minAge = Number(args['orphan-min-age-minutes']);
if (!Number.isInteger(minAge) || minAge < 0) fail('--orphan-min-age-minutes must be a whole number ≥ 0');

let config;
try {
  config = loadConfig(process.env);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  fail(error.problems.map((p) => `configuration error: ${p}`).join('\n'));
}
// Warnings (a PostgreSQL connection dropped) go to stderr: stdout carries the report.
const records = await openRecords(config, pino({ level: 'warn' }, pino.destination(2)));
const report = await checkStorage({
  repo: records.repository({ webhookUrls: [], now: Date.now, onEmit: () => {} }),
  storage: await createStorage(config, records.sqlite),
  now: Date.now,
  repair: args.repair,
  orphanMinAgeMs: minAge * 60_000,
});
await records.close();
console.log(args.json ? JSON.stringify(report, null, 2) : describe(report));
process.exit(report.unresolved > 0 ? 1 : 0);

function describe(r: StorageCheckReport): string {
  const lines = [`checked ${r.records} ready records against ${r.stored_objects} stored objects (${r.storage} storage)${r.repaired ? ', repairing' : ''}`];
  const size = (n: number | null) => (n === null ? 'nothing' : `${n} bytes`);
  for (const f of r.findings) {
    const what = {
      bytes_without_record: `bytes without a record (${size(f.stored_size)})`,
      missing: `record without bytes (recorded ${size(f.recorded_size)})`,
      size_mismatch: `size mismatch (recorded ${size(f.recorded_size)}, stored ${size(f.stored_size)})`,
      healed: 'marked damaged, bytes match again',
    }[f.problem];
    lines.push(`  ${f.key}: ${what}${f.action === 'none' ? '' : ` → ${f.action.replaceAll('_', ' ')}`}`);
  }
  for (const u of r.usage) lines.push(`  usage of ${u.user_id}: ${u.before} → ${u.after} bytes${r.repaired ? '' : ' (after --repair)'}`);
  lines.push(r.findings.length === 0 ? 'storage matches the records' : `${r.findings.length} findings, ${r.unresolved} left to repair${r.unresolved > 0 && !r.repaired ? ' (run again with --repair)' : ''}`);
  return lines.join('\n');
}
