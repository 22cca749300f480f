/**
 * `interactionCreate`: every slash command, the message command and every button press comes here, is checked
 * against the allowlists, and goes to its handler: `/enhance` and "Enhance" (enhance.ts), `/queue` and
 * `/cancel` (queue.ts), the buttons (buttons.ts). The commands themselves are registered by commands.ts.
 *
 * Each person is answered in their Discord language: an interaction's `locale` (`zh-CN` → the `zh-Hans`
 * catalogue, one without a catalogue → English). It is remembered (locales.ts) for the images they send in
 * messages, which carry none.
 */
import type { ChatInputCommandInteraction, Interaction } from 'discord.js';
import { resolveLocale, translator, type Locale } from '../../../src/index.js';
import { allowed } from '../access.js';
import { ENHANCE_MESSAGE } from '../commands.js';
import type { DiscordContext } from '../context.js';
import { pressButton } from './buttons.js';
import { enhanceCommand, enhanceMessageCommand } from './enhance.js';
import { cancelCommand, queueCommand } from './queue.js';

type SlashHandler = (ctx: DiscordContext, interaction: ChatInputCommandInteraction, locale: Locale) => Promise<void>;

/** The slash commands by the name Discord sends, which is the English one whatever the person's language. */
const SLASH: Record<string, SlashHandler> = { enhance: enhanceCommand, queue: queueCommand, cancel: cancelCommand };

/**
 * Answers one interaction. One the bot has no handler for (a command a client still shows from an older list)
 * is left unanswered: Discord then tells the person the application did not respond.
 *
 * @example
 * client.on('interactionCreate', (interaction) => void routeInteraction(ctx, interaction).catch(...));
 */
export async function routeInteraction(ctx: DiscordContext, interaction: Interaction): Promise<void> {
  if (!interaction.isRepliable()) return;
  // The person's own language setting in Discord (`zh-CN`, `en-US`), sent with every interaction.
  const locale = resolveLocale([interaction.locale]);
  const t = translator(locale);
  if (!allowed(ctx.config, interaction.guildId, interaction.channelId, interaction.user.id)) {
    await interaction.reply({ content: t('discord.notHere'), flags: 64 });
    return;
  }
  ctx.locales.remember(interaction.user.id, locale);
  if (interaction.isChatInputCommand()) {
    const handler = Object.hasOwn(SLASH, interaction.commandName) ? SLASH[interaction.commandName] : undefined;
    return handler?.(ctx, interaction, locale);
  }
  if (interaction.isMessageContextMenuCommand() && interaction.commandName === ENHANCE_MESSAGE) return enhanceMessageCommand(ctx, interaction, locale);
  if (interaction.isButton()) return pressButton(ctx, interaction, locale);
}
