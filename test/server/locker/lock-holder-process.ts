// A server instance reduced to one held upload lock, run as a child process so that a test can kill
// it with SIGKILL: no unlock, no close, its connections cut by the kernel, as when a machine dies.
// argv: <database url> <upload id>. Prints "locked" once it holds the lock; never releases it.
import { openInstance } from './pg-instance.ts';

const [url, uploadId] = process.argv.slice(2);
if (!url || !uploadId) throw new Error('usage: lock-holder-process.ts <database url> <upload id>');
const instance = await openInstance(url, 'doomed');
await instance.locker.newLock(uploadId).lock(new AbortController().signal, () => {
  // Refuses to release: only the lease can free this lock.
});
process.stdout.write('locked\n');
setInterval(() => {}, 60_000); // keep running until killed
