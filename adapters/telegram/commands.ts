/**
 * The commands a person types: `/start` and `/help`, `/status` (their jobs and how far each is), `/cancel` (all of
 * them), and the Cancel button under a status message. `/enhance` is intake's (intake.ts). The command menu
 * Telegram shows under `/` is registered here too, in each catalogue's language.
 */
import { Composer } from 'grammy';
import { DEFAULT_LOCALE, JOB_ID, LOCALES, reasonTextOf, say, translator, type Locale } from '../../src/index.js';
import type { TelegramContext, TelegramParts } from './context.js';
import { safeReason } from './secret.js';
import { helpText, progressText, queuedText } from './text.js';

const ownerOf = (ctx: TelegramContext) => `telegram:${ctx.from?.id}`;

export function commands(parts: TelegramParts): Composer<TelegramContext> {
  const { queue, options, limits } = parts;
  const composer = new Composer<TelegramContext>();
  composer.command(['start', 'help'], (ctx) =>
    ctx.reply(helpText(ctx.locale, { ...limits, maxPixels: options.maxPixels, queuedPerOwner: options.queuedPerOwner, linked: options.links !== undefined })),
  );
  composer.command('status', async (ctx) => {
    const jobs = await queue.getJobs(ownerOf(ctx));
    if (jobs.length === 0) return void (await ctx.reply(ctx.t('telegram.noJobs')));
    const lines = jobs.map((job) => {
      const progress = parts.progress.get(job.id);
      const state =
        job.state === 'active' ? (progress ? progressText(ctx.locale, progress) : ctx.t('telegram.starting')) : queuedText(ctx.locale, job.position, job.etaMs);
      return ctx.t('telegram.statusLine', { name: job.request.name, state });
    });
    await ctx.reply(lines.join('\n'));
  });
  composer.command('cancel', async (ctx) => {
    let cancelled = 0;
    for (const job of await queue.getJobs(ownerOf(ctx))) {
      try {
        await queue.cancel(job.id, ownerOf(ctx));
        cancelled += 1;
      } catch {
        // It ended meanwhile.
      }
    }
    await ctx.reply(cancelled === 0 ? ctx.t('telegram.noJobs') : ctx.t('telegram.cancelledJobs', { count: cancelled }));
  });
  composer.callbackQuery(/^cancel:([^:]+)$/, async (ctx) => {
    const id = ctx.match[1];
    if (!JOB_ID.test(id) || !(await queue.getJob(id))) return void (await ctx.answerCallbackQuery({ text: ctx.t('telegram.alreadyEnded') }));
    try {
      await queue.cancel(id, ownerOf(ctx));
      await ctx.answerCallbackQuery({ text: ctx.t('telegram.cancelling') });
    } catch (error) {
      await ctx.answerCallbackQuery({ text: say(ctx.locale, reasonTextOf(error)) });
    }
  });
  return composer;
}

/**
 * The command menu Telegram shows under `/`: in English for everyone, and in each other catalogue's language for
 * the people whose app is set to it (`language_code` `zh`). A failure only costs the menu, so it is logged.
 */
export async function registerCommands(parts: Pick<TelegramParts, 'api' | 'log' | 'token'>): Promise<void> {
  const menu = (locale: Locale) => {
    const t = translator(locale);
    return (['start', 'help', 'enhance', 'status', 'cancel'] as const).map((command) => ({
      command,
      description: t(`telegram.command${command[0].toUpperCase()}${command.slice(1)}`),
    }));
  };
  try {
    await parts.api.setMyCommands(menu(DEFAULT_LOCALE));
    // Telegram names a language by its two-letter code only: zh-Hans is `zh`.
    for (const locale of LOCALES.filter((l) => l !== DEFAULT_LOCALE)) {
      await parts.api.setMyCommands(menu(locale), { language_code: new Intl.Locale(locale).language as 'zh' });
    }
  } catch (error) {
    parts.log.warn({ err: safeReason(error, parts.token) }, 'registering the command menu failed');
  }
}
