// What an upload reports as it goes, whichever way it is shown (progress-output.ts chooses).

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
