/**
 * A job as one viewer reads it: the status line, the reason and the sizes said in the viewer's language. The door
 * keeps jobs and events in plain data (a reason as a catalogue `Text`); each page's event stream says them in its
 * own viewer's language, so the person who opens a link sees it in theirs, whoever uploaded it.
 */
import { formatSize, plainText, say, sentence, type EnhanceProgress, type Locale, type Text } from '../../src/index.js';
import type { KeptJob } from './keep.js';
import { webSay } from './language.js';

/** A job as its page sees it, before it is said in a language. */
export interface Snapshot {
  id: string;
  name: string;
  state: KeptJob['state'] | 'finishing';
  position: number;
  etaMs: number;
  progress?: EnhanceProgress;
  preview: boolean;
  /** Why it failed or was cancelled: English, and as a catalogue message (absent in jobs kept before it was). */
  reason?: string;
  reasonText?: Text;
  result?: KeptJob['result'];
  width: number;
  height: number;
  bytes: number;
  format: string;
  expires: number;
  report: boolean;
  options: KeptJob['options'];
}

/** What a job page is told, first as a whole (`state`), then as it changes. */
export type PageEvent =
  | { type: 'queued'; data: { position: number; etaMs: number } }
  | { type: 'started'; data: object }
  | { type: 'progress'; data: EnhanceProgress }
  | { type: 'preview'; data: { region: object } }
  | { type: 'finishing'; data: object }
  | { type: 'done'; data: Snapshot };

/** `2nd`, `第 2 位`: i18next picks the form by the language's ordinal plural rules (`web.nth_ordinal_one`, `_two`, …). */
export function ordinal(locale: Locale, n: number): string {
  return webSay(locale, 'nth', { count: n, ordinal: true });
}

/** `Waiting: 2nd in line, done in about 12 s`, or `Next in line, …` for the first. */
export function waitingLine(locale: Locale, position: number, etaMs: number): string {
  const eta = Math.max(1000, etaMs);
  return position > 1 ? webSay(locale, 'waiting', { nth: ordinal(locale, position), eta }) : webSay(locale, 'next', { eta });
}

/** `Running: 3 of 20 tiles, about 12 s left`, or the model's first preparation (`Preparing the anime model, …`). */
export function runningLine(locale: Locale, progress: EnhanceProgress | undefined): string {
  if (!progress) return webSay(locale, 'running');
  if (progress.preparing) return sentence(say(locale, progress.preparing), locale);
  return webSay(locale, 'runningTiles', { done: progress.tilesDone, total: progress.tilesTotal, eta: Math.max(1000, progress.etaMs) });
}

/** A job's reason, in `locale`. */
export function reasonLine(locale: Locale, snapshot: Pick<Snapshot, 'reason' | 'reasonText'>): string {
  return say(locale, snapshot.reasonText ?? plainText(snapshot.reason ?? ''));
}

/** The status line of a whole snapshot. */
export function statusLine(locale: Locale, s: Snapshot): string {
  switch (s.state) {
    case 'waiting':
      return waitingLine(locale, s.position, s.etaMs);
    case 'active':
      return runningLine(locale, s.progress);
    case 'finishing':
      return webSay(locale, 'finishing');
    case 'completed':
      return webSay(locale, 'done');
    case 'failed':
      return webSay(locale, 'failedWhy', { reason: reasonLine(locale, s) });
    case 'cancelled':
      return webSay(locale, 'cancelledWhy', { reason: reasonLine(locale, s) });
  }
}

/** A snapshot as the viewer reads it: its status line, its reason and its sizes in `locale`. */
export function snapshotFor(locale: Locale, s: Snapshot) {
  const { reasonText: _, progress, ...rest } = s;
  return {
    ...rest,
    ...(progress ? { progress: progressFor(locale, progress) } : {}),
    ...(s.state === 'failed' || s.state === 'cancelled' ? { reason: reasonLine(locale, s) } : {}),
    text: statusLine(locale, s),
    sizes: { input: formatSize(locale, s.bytes), result: formatSize(locale, s.result?.outputs?.result ?? 0) },
  };
}

function progressFor(locale: Locale, p: EnhanceProgress) {
  return { ...p, preparing: p.preparing && say(locale, p.preparing), text: runningLine(locale, p) };
}

/** An event as the viewer reads it: its data with the status line (`text`) in `locale`. */
export function eventFor(locale: Locale, event: PageEvent): { type: string; data: object } {
  switch (event.type) {
    case 'queued':
      return { type: event.type, data: { ...event.data, text: waitingLine(locale, event.data.position, event.data.etaMs) } };
    case 'started':
      return { type: event.type, data: { text: webSay(locale, 'running') } };
    case 'progress':
      return { type: event.type, data: progressFor(locale, event.data) };
    case 'finishing':
      return { type: event.type, data: { text: webSay(locale, 'finishing') } };
    case 'done':
      return { type: event.type, data: snapshotFor(locale, event.data) };
    default:
      return event;
  }
}
