// How an upload's progress is shown: a bar per file on a terminal, one line per event otherwise
// (a log file or CI output gets readable lines, not escape codes or half-drawn bars). Progress
// goes to stderr; results (keys, links) go to stdout from the caller, once a file's bar is done.
import { progressBar } from './progress-bar.ts';
import { progressLines } from './progress-lines.ts';

export interface FileProgress {
  /** The server already holds `offset` bytes of this file. */
  resumed(offset: number): void;
  sent(bytes: number): void;
  /** The last word for this file ('done', 'failed', 'stopped'); nothing is drawn after it. */
  end(status: string): void;
}

export interface Progress {
  start(file: string, size: number): FileProgress;
}

export function progressFor(stream: NodeJS.WriteStream): Progress {
  return stream.isTTY ? progressBar(stream) : progressLines((line) => stream.write(`${line}\n`));
}
