// Progress as plain lines, for a stderr that is not a terminal: when a file starts, each tenth of
// it, and when it was resumed. The caller prints the result (or the failure) itself.
import { formatBytes } from '../shared/format.ts';
import type { Progress } from './progress.ts';

const STEPS = 10;

export function progressLines(write: (line: string) => void): Progress {
  return {
    start(file, size) {
      write(`uploading ${file} (${formatBytes(size)})`);
      let shown = 0;
      return {
        resumed: (offset) => {
          write(`resuming ${file} at byte ${offset} of ${size}`);
          shown = step(offset, size);
        },
        sent: (bytes) => {
          const reached = step(bytes, size);
          // 100% is not announced: the result line that follows says it.
          if (reached <= shown || reached >= STEPS) return;
          shown = reached;
          write(`${file}: ${reached * STEPS}% (${formatBytes(bytes)} of ${formatBytes(size)})`);
        },
        end: () => {},
      };
    },
  };
}

function step(bytes: number, size: number): number {
  return size === 0 ? STEPS : Math.floor((bytes / size) * STEPS);
}
