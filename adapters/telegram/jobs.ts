/**
 * The queue's events about this door's jobs, as edits of each job's status message (throttled per chat by the
 * status editor): its place in line and ETA, `Starting…`, a bar after each tile, a wait for disk space; the early
 * preview as a photo of its own. Each job comes typed by the door kit, its `replyTo` a `TelegramReply`. Answers
 * need only the token, so recovered jobs are answered while Telegram's polling is down.
 */
import { InputFile } from 'grammy';
import { DEFAULT_LOCALE, say, sentence, translator, type JobOf, type Locale } from '../../src/index.js';
import { doorEvents, doorJobs } from '../kit/door-events.js';
import type { TelegramParts } from './context.js';
import { cancelButton, replyParams, type TelegramReply } from './reply.js';
import { safeReason } from './secret.js';
import { label, progressText, queuedText } from './text.js';

export type TelegramJob = JobOf<TelegramReply>;

/** The language a job's person reads, stored with it when it was sent. */
export const localeOfJob = (job: TelegramJob): Locale => job.request.locale ?? DEFAULT_LOCALE;

/** Listens once, at start, and never stops: after `stop()` jobs are still delivered until the queue has closed. */
export function listenToJobs(parts: TelegramParts): void {
  const { editor, progress, previews, notes, log, token } = parts;
  const events = doorEvents<TelegramReply>(parts.queue, 'telegram');
  /** The status message of `job`, with its Cancel button, showing `text` after the album label. */
  const status = (job: TelegramJob, text: (locale: Locale) => string) => {
    const { chat, status: message, album } = job.request.replyTo;
    const locale = localeOfJob(job);
    return { chat, message, text: label(locale, album) + text(locale), buttons: cancelButton(locale, job.id, offerOf(job)) };
  };
  // Said when it is queued: the time, and where `auto` chose, the model and why (`photo: x4plus would take about
  // 36 min, used x4fast`), with the other model as a button.
  events.on('queued', (job, info) => editor.now(status(job, (locale) => queuedText(locale, info.position, info.etaMs) + planText(locale, job))));
  events.on('started', (job) => editor.update(status(job, (locale) => translator(locale)('telegram.starting'))));
  events.on('progress', (job, p) => {
    progress.set(job.id, p);
    editor.update(status(job, (locale) => progressText(locale, p)));
  });
  // Told once, in the status message: the job waits for disk space and goes on by itself.
  events.on('held', (job, info) => editor.now(status(job, (locale) => translator(locale)('telegram.waiting', { reason: info.text }))));
  events.on('preview', (job) => {
    const sending = sendEarly(parts, job).catch((error: unknown) => log.warn({ job: job.id, err: safeReason(error, token) }, 'sending the early preview failed'));
    previews.set(job.id, sending);
  });
  // Closed for good: delivery is not asked again, so its note of what was sent can go.
  const forget = (job: TelegramJob) => {
    progress.delete(job.id);
    previews.delete(job.id);
    void notes.forget(job.id);
  };
  events.on('delivered', forget);
  events.on('undelivered', (job, info) => {
    if (info.retryInMs === null) forget(job);
  });
}

/** The plan's choice, said after the queued line, where the model was chosen for the person (`auto`). */
function planText(locale: Locale, job: TelegramJob): string {
  return job.plan?.scene ? ` ${translator(locale)('telegram.sentence', { line: sentence(say(locale, job.plan.reason), locale) })}` : '';
}

/** The other model a job's buttons offer: only where the plan chose its model. */
const offerOf = (job: TelegramJob) => (job.plan?.scene ? job.plan.other : undefined);

/** Jobs waiting since before a restart: their status messages say so, and the notes of delivered jobs go. */
export async function resumeJobs(parts: TelegramParts): Promise<void> {
  await parts.notes.prune(async (id) => (await parts.queue.getJob(id)) !== undefined);
  for (const job of await doorJobs<TelegramReply>(parts.queue, 'telegram')) {
    if (job.state !== 'waiting') continue;
    const r = job.request.replyTo;
    // At once, like the first word of a new job: a throttled update was replaced by the job's `Starting…` when
    // the worker took it within the chat's edit interval, and the person never learned of the restart.
    const locale = localeOfJob(job);
    const prefix = label(locale, r.album) + translator(locale)('telegram.restarted');
    parts.editor.now({ chat: r.chat, message: r.status, text: queuedText(locale, job.position, job.etaMs, prefix), buttons: cancelButton(locale, job.id) });
  }
}

async function sendEarly(parts: TelegramParts, job: TelegramJob): Promise<void> {
  const r = job.request.replyTo;
  const locale = localeOfJob(job);
  await parts.notes.once(job.id, 'early', async () => {
    const png = await parts.queue.readOutput(job.id, 'early');
    await parts.api.sendPhoto(r.chat, new InputFile(png, 'preview.png'), {
      caption: label(locale, r.album) + translator(locale)('telegram.earlyPreview'),
      reply_parameters: replyParams(r.message),
    });
  });
}
