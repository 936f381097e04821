// How the clients (CLI and web page) write sizes, dates and durations for people.
const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

/** Powers of 1024 with the familiar labels, as Uppy's Dashboard shows them beside our list. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${UNITS[unit]}`;
}

export function formatDate(iso: string): string {
  return iso.slice(0, 16).replace('T', ' ');
}

/** `90`, `90s`, `15m`, `2h`, `7d` → seconds; null when it is none of those. */
export function parseDuration(text: string): number | null {
  const match = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (!match) return null;
  const factor = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * factor;
}
