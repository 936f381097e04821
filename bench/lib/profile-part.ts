// `--only profile`: a CPU profile of the built server (node --cpu-prof dist/server/main.js, every
// hook on) taking small creation-with-upload POSTs for a while, summarised: where the main thread's
// time goes, grouped, then the top functions by self and by total time. The .cpuprofile is kept in
// bench/results/ for Chrome DevTools or speedscope.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { summarizeProfile, type Cost } from './cpu-profile.ts';
import { sendSmall } from './small-uploads.ts';
import { startTarget } from './targets.ts';
import type { PartContext } from './upload-path-parts.ts';
import { formatSize } from './units.ts';

export async function profilePart(c: PartContext, seconds: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-profile-'));
  try {
    c.log(`profile: real server under --cpu-prof, ${formatSize(c.small.size)} uploads for ${seconds} s`);
    const server = await startTarget(c.root, 'real', { env: c.hooks.env, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
    let sent;
    try {
      c.hooks.mark();
      sent = await sendSmall(server, 'real', { ...c.small, count: Number.MAX_SAFE_INTEGER, maxMs: seconds * 1000, userId: 'bench' });
      await c.hooks.settled(sent.uploads);
    } finally {
      await server.stop(); // the profile is written as the process exits
    }
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error('node --cpu-prof wrote no profile');
    const kept = join(c.root, 'bench/results/small-uploads.cpuprofile');
    mkdirSync(join(c.root, 'bench/results'), { recursive: true });
    copyFileSync(join(dir, file), kept);
    const s = summarizeProfile(kept);
    const lines = [
      `CPU profile: ${sent.uploads} uploads of ${formatSize(c.small.size)}, ${c.small.concurrency} at once, ${seconds} s; main thread ${(s.totalMs / 1000).toFixed(1)} s sampled (${(s.totalMs / sent.uploads).toFixed(2)} ms per upload, idle included); ${kept}`,
      sent.problem ? `problem: ${sent.problem}` : '',
      ...section('time by stage (inclusive; each sample counted once, in the first stage its stack is in):', s.stages),
      ...section('self time by group:', s.groups),
      ...section('self time by function:', s.self),
      ...section('total time by function (the function and everything it called):', s.total),
    ];
    return lines.join('\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A blank line, the title, then one line per cost: share, milliseconds, name. */
function section(title: string, costs: Cost[]): string[] {
  return ['', title, ...costs.map((x) => `${(x.share * 100).toFixed(1).padStart(5)}%  ${x.ms.toFixed(0).padStart(7)} ms  ${x.name}`)];
}
