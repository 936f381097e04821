// Progress on a terminal: one cli-progress bar per file, drawn to fit the terminal's width (an
// 80-column terminal shows every field, "done" included). Files are sent one after the other, so
// each bar is finished (and its line left in place) before anything else is printed: no buffered
// log that a stop() would lose.
import cliProgress from 'cli-progress';
import { formatBytes } from '../shared/format.ts';
import type { Progress } from './progress.ts';

const NAME = 24;
const BYTES = 9; // "1023.9 MB"
const STATUS = 9; // "uploading"
// name, bar, "100%", "sent/size", status, with a space between each.
const FIXED = NAME + 1 + 1 + 4 + 1 + BYTES + 1 + BYTES + 1 + STATUS;

export function progressBar(stream: NodeJS.WriteStream): Progress {
  return {
    start(file, size) {
      // One column spare: a line that fills the last column makes some terminals wrap.
      const barsize = Math.max(10, Math.min(40, (stream.columns || 80) - FIXED - 1));
      const bar = new cliProgress.SingleBar({
        stream,
        format: '{name} {bar} {percentage}% {sent}/{size} {status}',
        barsize,
        barCompleteChar: '\u2588',
        barIncompleteChar: '\u2591',
        hideCursor: true,
        clearOnComplete: false,
        autopadding: true,
      });
      const sizeText = formatBytes(size).padEnd(BYTES);
      let current = 0;
      const show = (bytes: number, status: string) => {
        current = bytes;
        bar.update(bytes, { sent: formatBytes(bytes).padStart(BYTES), size: sizeText, status });
      };
      bar.start(size, 0, { name: fit(file), sent: formatBytes(0).padStart(BYTES), size: sizeText, status: 'hashing' });
      return {
        resumed: (offset) => show(offset, 'resuming'),
        sent: (bytes) => show(bytes, 'uploading'),
        end: (status) => {
          show(status === 'done' ? size : current, status);
          bar.stop();
        },
      };
    },
  };
}

/** The file's name, cut to the column with an ellipsis when longer, padded when shorter. */
function fit(file: string): string {
  const name = file.split(/[\\/]/).pop() ?? file;
  const chars = [...name];
  return chars.length <= NAME ? name.padEnd(NAME) : `${chars.slice(0, NAME - 1).join('')}\u2026`;
}
