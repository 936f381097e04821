// Runs a Python script with Debian's /usr/bin/python3 (it sees the python3-* packages, such as
// python3-tuspy; the pyenv python3 first on PATH does not). Asynchronous: the server under test
// runs in this process and must keep answering.
import { spawn } from 'node:child_process';

export interface PythonResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runPython(script: string, env: Record<string, string> = {}): Promise<PythonResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/python3', ['-c', script], { env: { ...process.env, ...env, PYTHONPATH: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
