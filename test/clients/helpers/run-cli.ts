// Runs the CLI as a user would: its npm bin (clients/cli/bin.mjs) in a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../../helpers/server.ts';

export const CLI_BIN = path.join(ROOT, 'clients/cli/bin.mjs');

export interface CliRun {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Exit code, or the signal's name when it was killed. */
  exited: Promise<number | string>;
}

export interface CliWhere {
  /** An installed `stream-line` to run instead of the repository's bin (run as a shell would: its #! line). */
  bin?: string;
  cwd?: string;
}

/** The command line for the CLI: the repository's bin through this node, or an installed one. */
function cliCommand(args: string[], where: CliWhere): string[] {
  return where.bin ? [where.bin, ...args] : [process.execPath, CLI_BIN, ...args];
}

function cliEnv(env: Record<string, string>): Record<string, string> {
  // This node first on PATH: an installed bin's `#!/usr/bin/env node` finds the same one.
  return { PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`, HOME: process.env.HOME ?? '/tmp', ...env };
}

export function startCli(args: string[], env: Record<string, string>, where: CliWhere = {}): CliRun {
  const [command, ...rest] = cliCommand(args, where);
  const child = spawn(command!, rest, { cwd: where.cwd ?? ROOT, env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.once('close', (code, signal) => resolve(code ?? signal ?? -1)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

export async function runCli(args: string[], env: Record<string, string>, where: CliWhere = {}): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const run = startCli(args, env, where);
  const code = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

const ON_PTY = path.join(ROOT, 'test/clients/helpers/on-pty.py');

/**
 * Runs the CLI on a pseudo-terminal `columns` wide (Debian's python3 pty module): stdout and stderr
 * are the terminal, as in a person's shell. Resolves with everything drawn on it.
 */
export function runCliOnTerminal(args: string[], env: Record<string, string>, columns = 80, where: CliWhere = {}): Promise<{ code: number | string; drawn: string }> {
  const child = spawn('/usr/bin/python3', [ON_PTY, String(columns), ...cliCommand(args, where)], {
    cwd: where.cwd ?? ROOT,
    env: cliEnv({ TERM: 'xterm-256color', ...env }),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let drawn = '';
  child.stdout!.on('data', (d: Buffer) => (drawn += d.toString()));
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ code: code ?? signal ?? -1, drawn })));
}

/**
 * What a terminal shows, line by line: escape sequences removed, and of a line redrawn in place
 * (carriage return, or the cursor sent back to its start) only its last drawing.
 */
export function screenLines(drawn: string): string[] {
  return drawn
    // Cursor restore (ESC 8) and "to column 1" (CSI G) return to the line's start, like \r.
    .replace(/\x1b8|\x1b\[1?G|\x1b\[0?G/g, '\r')
    .replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, '')
    .split('\n')
    .map((line) => line.split('\r').filter((part) => part !== '').pop() ?? '')
    .filter((line) => line.trim() !== '');
}
