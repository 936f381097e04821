// The small local file that lets an interrupted upload continue: for each local file (absolute
// path, size, mtime — a changed file must not resume into its old upload), the server's upload URL.
// Written whole to a temp file and renamed, so a kill mid-write never leaves it half-written.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface ResumeEntry {
  uploadUrl: string;
  savedAt: string;
}

export interface FileIdentity {
  server: string;
  absolutePath: string;
  size: number;
  mtimeMs: number;
  folder: string;
}

export class ResumeState {
  private entries: Record<string, ResumeEntry>;

  constructor(private readonly file: string) {
    this.entries = readEntries(file);
  }

  get(id: FileIdentity): ResumeEntry | undefined {
    return this.entries[keyOf(id)];
  }

  set(id: FileIdentity, uploadUrl: string): void {
    this.entries[keyOf(id)] = { uploadUrl, savedAt: new Date().toISOString() };
    this.save();
  }

  delete(id: FileIdentity): void {
    if (!(keyOf(id) in this.entries)) return;
    delete this.entries[keyOf(id)];
    this.save();
  }

  private save(): void {
    mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const temp = `${this.file}.${process.pid}.tmp`;
    // Upload URLs are capabilities only with the token, but keep them private all the same.
    writeFileSync(temp, `${JSON.stringify(this.entries, null, 2)}\n`, { mode: 0o600 });
    renameSync(temp, this.file);
  }
}

function keyOf(id: FileIdentity): string {
  return JSON.stringify([id.server, id.absolutePath, id.size, Math.trunc(id.mtimeMs), id.folder]);
}

function readEntries(file: string): Record<string, ResumeEntry> {
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, ResumeEntry>) : {};
  } catch {
    // Missing or unreadable: start afresh (the worst case is an upload that starts from 0).
    return {};
  }
}
