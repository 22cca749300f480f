/**
 * `messageCreate`: an image sent to the bot in a DM, or in a server with a mention of the bot. It needs no
 * privileged intent: Discord sends a message's content and attachments to a bot without the Message Content
 * intent in DMs and when the bot is mentioned, which are exactly the messages it answers; all others are ignored.
 *
 * A message carries no locale: it is answered in the language of that person's last interaction (locales.ts),
 * else the server's preferred one, and the job keeps it as `request.locale`.
 */
import type { Message } from 'discord.js';
import { resolveLocale, translator } from '../../../src/index.js';
import { allowed } from '../access.js';
import type { DiscordReply } from '../answers.js';
import type { DiscordContext } from '../context.js';
import { attachmentOf, firstImage } from '../intake.js';
import { uploadLimit } from '../limits.js';
import { bold } from '../text.js';

/**
 * Takes the message's first image in, answering with a reply to the message that every later word about the
 * image edits; a message without one gets a hint.
 */
export async function onMessage(ctx: DiscordContext, message: Message): Promise<void> {
  if (message.author.bot) return;
  const dm = message.guildId === null;
  if (!dm && !message.mentions.users.has(message.client.user.id)) return;
  const { answers, config } = ctx;
  const base = { adapter: 'discord' as const, user: message.author.id, channel: message.channelId, ...(message.guildId ? { guild: message.guildId } : {}), source: message.id };
  // A message carries no upload limit: the server's from its boost tier, in a DM the configured one (limits.ts).
  const reply: DiscordReply = { ...base, limitBytes: uploadLimit({ premiumTier: message.guild?.premiumTier }, config.uploadLimitBytes) };
  const key = `msg:${message.id}`;
  const locale = ctx.locales.of(message.author.id) ?? resolveLocale([message.guild?.preferredLocale]);
  const t = translator(locale);
  if (!allowed(config, message.guildId, message.channelId, message.author.id)) {
    await answers.send(reply, { content: t('discord.notHere') });
    return;
  }
  const image = firstImage(message.attachments.values());
  if (!image) {
    await answers.send(reply, { content: t('discord.sendImage') });
    return;
  }
  // The status message first: every later word about this image edits it.
  await answers.edit(key, reply, { content: t('discord.downloading', { name: bold(image.name) }) });
  const at = answers.where(key);
  const withMessage: DiscordReply = at ? { ...reply, channel: at.channel, message: at.message } : reply;
  // Posted in a DM instead (the bot cannot write in the channel): the job's answers go there, with no server.
  if (at && at.channel !== reply.channel) delete withMessage.guild;
  await ctx.intake.accept({ attachment: attachmentOf(image), options: {}, report: false, reply: withMessage, locale, say: (out) => answers.edit(key, withMessage, out) });
  answers.forget(key);
}
