// How an upload's progress is shown: a bar per file on a terminal, one line per event otherwise
// (a log file or CI output gets readable lines, not escape codes or half-drawn bars). Progress
// goes to stderr; results (keys, links) go to stdout from the caller, once a file's bar is done.
import type { Progress } from './progress.ts';
import { progressBar } from './progress-bar.ts';
import { progressLines } from './progress-lines.ts';

export function progressFor(stream: NodeJS.WriteStream): Progress {
  return stream.isTTY ? progressBar(stream) : progressLines((line) => stream.write(`${line}\n`));
}
