/**
 * The two ways to ask for an image by interaction: `/enhance` with an attachment and its options, and the
 * message command "Enhance" on someone's message with an image. Both defer at once (Discord wants an answer
 * within 3 s, a download can take longer), then every word about the image edits that deferred reply.
 *
 * The job keeps where its answers go (`DiscordReply`), with the interaction token sealed: after a restart,
 * progress and the answer still reach the person, through the interaction while its token lives and by channel
 * message after (lifetime.ts).
 */
import type { ChatInputCommandInteraction, MessageContextMenuCommandInteraction, RepliableInteraction } from 'discord.js';
import { translator, type EnhanceOptions, type Locale } from '../../../src/index.js';
import type { DiscordReply, Outgoing } from '../answers.js';
import type { DiscordContext } from '../context.js';
import { attachmentOf, firstImage } from '../intake.js';
import { uploadLimit } from '../limits.js';

/** Where an interaction's answers go, with its token sealed; `original` is its deferred reply's message id. */
function interactionReply(ctx: DiscordContext, interaction: RepliableInteraction, original: string | null): DiscordReply {
  return {
    adapter: 'discord',
    user: interaction.user.id,
    channel: interaction.channelId!,
    ...(interaction.guildId ? { guild: interaction.guildId } : {}),
    ...(original ? { original } : {}),
    interaction: { application: interaction.applicationId, sealed: ctx.secrets.seal(interaction.token), expiresAt: interaction.createdTimestamp + ctx.config.interactionLifetimeMs },
    limitBytes: uploadLimit({ interaction: interaction.attachmentSizeLimit, premiumTier: interaction.guild?.premiumTier }, ctx.config.uploadLimitBytes),
  };
}

/** `/enhance image:<file> [model] [scale] [format] [raw] [precision] [report]`. */
export async function enhanceCommand(ctx: DiscordContext, interaction: ChatInputCommandInteraction, locale: Locale): Promise<void> {
  const deferred = await interaction.deferReply({ withResponse: true });
  const reply = interactionReply(ctx, interaction, deferred.interaction.responseMessageId);
  const attachment = interaction.options.getAttachment('image', true);
  const model = interaction.options.getString('model');
  const scale = interaction.options.getInteger('scale');
  const precision = interaction.options.getString('precision');
  const format = interaction.options.getString('format');
  // Choices are only a hint to Discord's client: the queue checks each value (an unknown model is refused there).
  const options: Partial<EnhanceOptions> = {
    ...(model ? { model } : {}),
    ...(scale ? { scale: scale as 2 | 3 | 4 } : {}),
    ...(interaction.options.getBoolean('raw') ? { tune: 'raw' as const } : {}),
    ...(precision ? { precision: precision as EnhanceOptions['precision'] } : {}),
    ...(format ? { format: format as EnhanceOptions['format'] } : {}),
  };
  const report = interaction.options.getBoolean('report') ?? false;
  const key = `pre:${interaction.id}`;
  await ctx.intake.accept({ attachment: attachmentOf(attachment), options, report, reply, locale, say: (out) => ctx.answers.edit(key, reply, out) });
  ctx.answers.forget(key);
}

/** The message command "Enhance" (Apps → Enhance on a message): the message's first image, with the defaults. */
export async function enhanceMessageCommand(ctx: DiscordContext, interaction: MessageContextMenuCommandInteraction, locale: Locale): Promise<void> {
  const deferred = await interaction.deferReply({ withResponse: true });
  const reply = interactionReply(ctx, interaction, deferred.interaction.responseMessageId);
  const key = `pre:${interaction.id}`;
  const say = (out: Outgoing) => ctx.answers.edit(key, reply, out);
  const image = firstImage(interaction.targetMessage.attachments.values());
  if (!image) return say({ content: translator(locale)('discord.noImageInMessage') });
  await ctx.intake.accept({ attachment: attachmentOf(image), options: {}, report: false, reply, locale, say });
  ctx.answers.forget(key);
}
