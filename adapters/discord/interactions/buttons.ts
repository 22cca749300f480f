/**
 * The buttons on the bot's messages and what a press does: Cancel on a status message (`cancel:<job>`), and a
 * scale a person picks when the PNG at the asked one would be over the upload limit (`scale:<offer>:<scale>`,
 * made by intake.ts with the offer), and the model for a job over `limits.confirmOver` (`model:<offer>:<model>`). A link button (style 5) to the job's page sends no interaction.
 */
import type { ButtonInteraction } from 'discord.js';
import { reasonTextOf, say, translator, type Locale } from '../../../src/index.js';
import type { DiscordContext, Say } from '../context.js';
import { bold } from '../text.js';

/** The row with a status message's Cancel button (style 4, red). */
export const cancelButton = (job: string, t: Say) => ({ type: 1, components: [{ type: 2, style: 4, label: t('discord.cancel'), custom_id: `cancel:${job}` }] });

/** A link button (style 5) to the job's page. */
export const pageButton = (url: string, t: Say) => ({ type: 1, components: [{ type: 2, style: 5, label: t('discord.openPage'), url }] });

/** A press of one of the bot's buttons, answered in the language of the press. */
export async function pressButton(ctx: DiscordContext, interaction: ButtonInteraction, locale: Locale): Promise<void> {
  const [kind, id, extra] = interaction.customId.split(':');
  const t = translator(locale);
  if (kind === 'cancel') {
    await interaction.deferUpdate();
    try {
      await ctx.queue.cancel(id, `discord:${interaction.user.id}`);
    } catch (error) {
      await interaction.followUp({ content: say(locale, reasonTextOf(error)), flags: 64 });
    }
  } else if (kind === 'scale') {
    const offer = ctx.intake.takeOffer(id, interaction.user.id);
    if (!offer) {
      await interaction.reply({ content: t('discord.choiceGone'), flags: 64 });
      return;
    }
    await interaction.update({ content: t('discord.scaleQueued', { name: bold(offer.intake.attachment.name), scale: Number(extra) }), components: [] });
    // Answered from now on in the language of the press: the person's setting as it is now.
    await ctx.intake.accept({ ...offer.intake, locale, options: { ...offer.intake.options, scale: Number(extra) as 2 | 3 | 4 } }, offer.input);
  } else if (kind === 'model') {
    // Yes to a long job: the model pressed, its own or the faster one.
    const offer = ctx.intake.takeOffer(id, interaction.user.id);
    if (!offer) {
      await interaction.reply({ content: t('discord.choiceGone'), flags: 64 });
      return;
    }
    await interaction.update({ content: t('discord.modelQueued', { name: bold(offer.intake.attachment.name), model: extra }), components: [] });
    await ctx.intake.accept({ ...offer.intake, locale, options: { ...offer.intake.options, model: extra } }, offer.input, true);
  }
}
