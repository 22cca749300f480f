/**
 * A one-line progress bar with ETA for a terminal (stderr), redrawn in place.
 */
import type { EnhanceProgress } from '../types.js';

const WIDTH = 24;

/** `m:ss`, as a terminal counts down (the doors say durations in words, through the catalogue's `duration`). */
export function clockTime(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

export function progressLine(p: EnhanceProgress): string {
  const filled = Math.round((p.tilesDone / Math.max(1, p.tilesTotal)) * WIDTH);
  return `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${p.tilesDone}/${p.tilesTotal} tiles  ETA ${clockTime(p.etaMs)}`;
}

/** Returns a progress callback that draws on `stream` when it is a terminal, and does nothing otherwise. */
export function terminalProgress(stream: NodeJS.WriteStream): { update: (p: EnhanceProgress) => void; clear: () => void } {
  if (!stream.isTTY) return { update: () => {}, clear: () => {} };
  return {
    update: (p) => stream.write(`\r${progressLine(p)}\x1b[K`),
    clear: () => stream.write('\r\x1b[K'),
  };
}
