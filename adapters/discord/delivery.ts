/**
 * A job's answer, in order: the result in its status message (the PNG, or the most faithful file that fits the
 * upload limit: lossless WebP, else a JPEG of the full resolution, see src/imaging/fit.ts; with a link to the
 * job's page, where the PNG is), then one message with the extras that fit (the comparison, the PDF); or the
 * one-line reason it failed or was cancelled. The queue asks again until this resolves, also after a restart,
 * so each part is sent once (SentNotes).
 */
import { DiscordAPIError } from 'discord.js';
import { fitToLimit, plainText, type EnhanceQueue, type EnhanceResult, type Logger, type Outcome } from '../../src/index.js';
import type { ResultLinks } from '../kit/result-links.js';
import type { SentNotes } from '../kit/sent-notes.js';
import type { Answers, DiscordJob } from './answers.js';
import { wordsFor } from './context.js';
import { pageButton } from './interactions/buttons.js';
import { bold, uploadName } from './text.js';

export interface DeliveryOptions {
  queue: EnhanceQueue;
  answers: Answers;
  /** What was sent of each answer, on disk: a delivery tried again, even after a restart, sends each part once. */
  notes: SentNotes;
  log: Logger;
  /** Links to the web door's job pages (with `web.publicUrl`): every answer carries one. */
  links?: ResultLinks;
}

/** A part of the answer, sent unless the job's note says it was. */
type Step = (name: string, run: () => Promise<void>) => Promise<void>;

/**
 * @example
 * const delivery = new Delivery({ queue, answers, notes, log, links });
 * await delivery.answer(job, outcome); // throws what Discord said; the door scrubs it and the queue tries again
 */
export class Delivery {
  constructor(private readonly deps: DeliveryOptions) {}

  /** Sends the parts of `job`'s answer not sent yet. */
  async answer(job: DiscordJob, outcome: Outcome): Promise<void> {
    const { queue, answers, notes, links } = this.deps;
    const reply = job.request.replyTo;
    const step: Step = (name, run) => notes.once(job.id, name, run);
    const t = wordsFor(job);
    const name = bold(job.request.name);
    if (outcome.state === 'completed') {
      const { result } = outcome;
      // Kept for the job's page before anything is sent: the queue forgets the files once this resolves.
      const url = links ? await links.keep(job, result) : undefined;
      await this.sendResult(job, result, step, url);
      const extras = [];
      if (result.outputs?.compare) extras.push({ name: uploadName(job.request.name, 'jpg', '.compare'), data: await queue.readOutput(job.id, 'compare') });
      if (result.outputs?.pdf) extras.push({ name: uploadName(job.request.name, 'pdf', '.report'), data: await queue.readOutput(job.id, 'pdf') });
      const fitting = extras.filter((file) => file.data.length <= reply.limitBytes);
      if (fitting.length > 0) {
        const what = fitting.map((f) => t(f.name.endsWith('.pdf') ? 'discord.pdf' : 'discord.compare')).join(t('discord.listSeparator'));
        await step('extras', () => answers.send(reply, { content: t('discord.line', { name, text: what }), files: fitting }));
      }
    } else if (outcome.state === 'failed') {
      const reason = outcome.text ?? plainText(outcome.reason);
      await step('result', () => answers.edit(job.id, reply, { content: t('discord.failed', { name, reason }), components: [] }));
    } else {
      const reason = outcome.text ?? plainText(outcome.reason);
      await step('result', () => answers.edit(job.id, reply, { content: t('discord.cancelled', { name, reason }), components: [] }));
    }
  }

  /**
   * The PNG (or the most faithful file that fits) in the status message. When Discord refuses the file as too
   * large (40005: its limit here is lower than the one it gave or the boost tier said), the file is fitted
   * into 3/4 of the refused size, up to three times, and the answer says so. With a link to the job's page
   * (`url`) the message carries its button, and a file that is not the PNG says the PNG is there.
   */
  private async sendResult(job: DiscordJob, result: EnhanceResult, step: Step, url?: string): Promise<void> {
    const { queue, answers, log } = this.deps;
    const reply = job.request.replyTo;
    const t = wordsFor(job);
    const name = bold(job.request.name);
    const { width, height } = result.output;
    const made = t('discord.made', { width, height, model: result.options.model, scale: result.options.scale, seconds: (result.ms.total / 1000).toFixed(1) });
    const components = url ? [pageButton(url, t)] : [];
    const png = await queue.readOutput(job.id, 'result');
    let limit = reply.limitBytes;
    let refused = '';
    for (let attempt = 0; ; attempt++) {
      const fitted = await fitToLimit(png, limit);
      const onPage = url && fitted?.note ? t('discord.pngOnPage') : '';
      const notes = [fitted?.note && t('reason.plain', { text: fitted.note }), onPage, refused].filter(Boolean).join('\n');
      const content = fitted
        ? `${t('discord.done', { name, made })}${notes ? `\n${notes}` : ''}`
        : `${t('discord.doneNoFile', { name, made, limit })}${refused ? `\n${refused}` : ''}`;
      const files = fitted ? [{ name: uploadName(job.request.name, fitted.format === 'jpeg' ? 'jpg' : fitted.format), data: fitted.bytes }] : [];
      try {
        await step('result', () => answers.edit(job.id, reply, { content, components, files }));
        return;
      } catch (error) {
        if (!fitted || attempt >= 3 || !(error instanceof DiscordAPIError && Number(error.code) === 40005)) throw error;
        refused = t('discord.refusedFile', { bytes: fitted.bytes.length });
        limit = Math.floor(fitted.bytes.length * 0.75);
        log.warn({ job: job.id, refusedBytes: fitted.bytes.length, nextLimit: limit }, 'Discord refused the file as too large; fitting it into less');
      }
    }
  }
}
