// Runs a command to completion with a time limit, keeping its output: the external tools the
// benches time or drive (dd, sha256sum, curl, wrk, zip).
import { spawn, type StdioNull } from 'node:child_process';
import { supervise } from './targets.ts';

export type Finished = { code: number | null; stdout: string; stderr: string; ms: number };

export type CommandOptions = {
  cwd?: string;
  /** SIGTERM after this long (then SIGKILL, by PID); the run is then a failure */
  timeoutMs?: number;
  /** a file descriptor for stdout (e.g. /dev/null) instead of collecting it */
  stdoutFd?: number;
  /** stderr straight to ours instead of collecting it */
  inheritStderr?: boolean;
};

/** Resolves when the command exits; rejects only when it cannot start or runs out of time. */
export function runCommand(cmd: string, args: readonly string[], options: CommandOptions = {}): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const stderrMode: 'inherit' | 'pipe' = options.inheritStderr ? 'inherit' : 'pipe';
    const stdoutMode: number | 'pipe' = options.stdoutFd ?? 'pipe';
    const child = spawn(cmd, args, { cwd: options.cwd, stdio: ['ignore' as StdioNull, stdoutMode, stderrMode] });
    const { stop } = supervise(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    let timedOut = false;
    const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      void stop();
    }, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      const ms = performance.now() - t0;
      if (timedOut) reject(new Error(`${cmd} did not finish within ${options.timeoutMs} ms`));
      else resolve({ code, stdout, stderr, ms });
    });
  });
}
