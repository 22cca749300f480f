/**
 * The queue's events about this door's jobs, as edits of each job's one status message: its place in line and
 * when it should be done (a Discord relative time, which each reader's client counts down), the model's first
 * preparation, a bar after each tile, a wait for disk space; the early preview as a message of its own. Each job
 * comes typed by the door kit (`doorEvents`), its `replyTo` a `DiscordReply`.
 *
 * Answers need only REST with the token, not the gateway: recovered jobs are answered even while Discord's gateway
 * cannot be reached.
 */
import type { SentNotes } from '../../kit/sent-notes.js';
import { doorEvents } from '../../kit/door-events.js';
import type { DiscordJob, DiscordReply } from '../answers.js';
import { wordsFor, type DiscordContext } from '../context.js';
import { cancelButton } from '../interactions/buttons.js';
import type { InteractionLifetimes } from '../lifetime.js';
import { bold, percentBar, relativeTime, uploadName } from '../text.js';

/** Listens once, at start, and never stops: after `stop()` jobs are still delivered until the queue has closed. */
export function listenToJobs(ctx: DiscordContext, lifetimes: InteractionLifetimes, notes: SentNotes): void {
  const { edits, progress, log, secrets } = ctx;
  const events = doorEvents<DiscordReply>(ctx.queue, 'discord');
  const name = (job: DiscordJob) => bold(job.request.name);
  events.on('queued', (job, { position, etaMs }) => {
    lifetimes.watch(job);
    const t = wordsFor(job);
    const state = position <= 1 ? { key: 'discord.nextInLine' } : { key: 'discord.inQueue', values: { position } };
    // Where auto chose the model, what and why (`photo: x4plus would take about 36 min, used x4fast`).
    const plan = job.plan?.scene ? `\n${t('reason.plain', { text: job.plan.reason })}` : '';
    edits.show(job, { content: t('discord.stateEta', { name: name(job), state, eta: relativeTime(etaMs) }) + plan, components: [cancelButton(job.id, t)] }, true);
  });
  events.on('started', (job) => {
    const { model, scale } = job.request.options;
    const t = wordsFor(job);
    edits.show(job, { content: t('discord.enhancing', { name: name(job), model, scale }), components: [cancelButton(job.id, t)] }, true);
  });
  events.on('progress', (job, p) => {
    const t = wordsFor(job);
    // The model's first preparation: said at once, since it is the only news for a minute or more.
    if (p.preparing) return edits.show(job, { content: t('discord.preparing', { name: name(job), line: p.preparing }), components: [cancelButton(job.id, t)] }, true);
    progress.set(job.id, { done: p.tilesDone, total: p.tilesTotal });
    const state = percentBar(p.tilesDone, p.tilesTotal);
    edits.show(job, { content: t('discord.stateEta', { name: name(job), state, eta: relativeTime(p.etaMs) }), components: [cancelButton(job.id, t)] });
  });
  // Told once, in the status message: the job waits for disk space and goes on by itself.
  events.on('held', (job, info) => {
    const t = wordsFor(job);
    edits.show(job, { content: t('discord.line', { name: name(job), text: info.text }), components: [cancelButton(job.id, t)] }, true);
  });
  events.on('preview', (job) => {
    void sendPreview(ctx, job).catch((error) => log.warn({ job: job.id, why: secrets.reason(error) }, 'could not send the early preview'));
  });
  // Closed for good: deliver() is not asked again, so its note of what was sent can go.
  events.on('delivered', (job) => void notes.forget(job.id));
  events.on('undelivered', (job, info) => {
    if (info.retryInMs !== null) return;
    void notes.forget(job.id);
    // deliver() forgets these only once it got through: a job given up kept its bar, edit slot and status message.
    progress.delete(job.id);
    edits.drop(job.id);
    ctx.answers.forget(job.id);
  });
}

/** The early preview (a detail of the result at full size) as a message of its own, when it fits the upload limit. */
async function sendPreview(ctx: DiscordContext, job: DiscordJob): Promise<void> {
  const png = await ctx.queue.readOutput(job.id, 'early');
  const reply = job.request.replyTo;
  if (png.length > reply.limitBytes) return;
  const t = wordsFor(job);
  await ctx.answers.send(reply, {
    content: t('discord.preview', { name: bold(job.request.name) }),
    files: [{ name: uploadName(job.request.name, 'png', '.early'), data: png }],
  });
}
