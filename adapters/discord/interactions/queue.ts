/**
 * A person's own jobs: `/queue` lists them with where each stands, `/cancel` cancels them all. Both answer only
 * the person who asked (flag 64, ephemeral) and mention no one, whatever a file name holds.
 */
import type { ChatInputCommandInteraction } from 'discord.js';
import { EnhanceError, translator, type Locale } from '../../../src/index.js';
import type { DiscordContext } from '../context.js';
import { bold, percentBar, relativeTime, safeName } from '../text.js';

/** Only the person who asked sees it. */
const EPHEMERAL = 64;

/** `/queue`: each job waiting or running, with its bar or place in line and when it should be done. */
export async function queueCommand(ctx: DiscordContext, interaction: ChatInputCommandInteraction, locale: Locale): Promise<void> {
  const t = translator(locale);
  const jobs = await ctx.queue.getJobs(`discord:${interaction.user.id}`);
  const lines = jobs.map((job) => {
    const p = ctx.progress.get(job.id);
    const state = job.state === 'active' ? (p ? percentBar(p.done, p.total) : { key: 'discord.starting' }) : { key: 'discord.position', values: { position: job.position } };
    return t('discord.stateEta', { name: bold(job.request.name), state, eta: relativeTime(job.etaMs) });
  });
  await interaction.reply({ content: lines.length > 0 ? lines.join('\n') : t('discord.noJobs'), flags: EPHEMERAL, allowedMentions: { parse: [] } });
}

/** `/cancel`: every job of the person; one that ended meanwhile is left out of the list. */
export async function cancelCommand(ctx: DiscordContext, interaction: ChatInputCommandInteraction, locale: Locale): Promise<void> {
  const t = translator(locale);
  const owner = `discord:${interaction.user.id}`;
  const jobs = await ctx.queue.getJobs(owner);
  const cancelled: string[] = [];
  for (const job of jobs) {
    try {
      await ctx.queue.cancel(job.id, owner);
      cancelled.push(safeName(job.request.name));
    } catch (error) {
      if (!(error instanceof EnhanceError)) throw error;
    }
  }
  const content = cancelled.length > 0 ? t('discord.cancelledList', { names: cancelled.join(t('discord.listSeparator')) }) : t('discord.noJobs');
  await interaction.reply({ content, flags: EPHEMERAL, allowedMentions: { parse: [] } });
}
