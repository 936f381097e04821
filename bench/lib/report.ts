// The markdown report every benchmark writes beside its printed table: title, the machine and
// run details, the table, and its notes.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Machine } from './machine.ts';

export function writeReport(out: string, report: { title: string; machine: Machine; details: string[]; table: string; notes: string[] }): void {
  const { machine } = report;
  const md = [
    `# ${report.title}`,
    '',
    `- machine: ${machine.cpu}, ${machine.cores} cores, ${machine.ramGiB.toFixed(1)} GiB RAM, ${machine.kernel}`,
    ...report.details.map((d) => `- ${d}`),
    '',
    report.table,
    '',
    ...report.notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, md);
}
