/**
 * The application commands: `/enhance`, `/queue`, `/cancel` and the message command "Enhance". Registered at
 * start with a bulk overwrite (PUT), which is idempotent: the same list twice changes nothing, and a command
 * dropped from this list disappears.
 */
import { ApplicationCommandOptionType, ApplicationCommandType, Routes, type REST } from 'discord.js';

/** The message context-menu command's name, as shown under Apps. */
export const ENHANCE_MESSAGE = 'Enhance';

/** What each built-in model is for, beside its name in the `model` choices; a user's own model shows its name. */
const MODEL_USES: Record<string, string> = {
  x4plus: 'photos, best',
  x4fast: 'photos, quick',
  anime: 'drawings, anime, illustrations',
  'anime-fast': 'drawings and anime, quick',
};

/**
 * The command list, with the model choices from the manifest.
 *
 * @example
 * commandList(['x4plus', 'x4fast']).map((c) => c.name); // ['enhance', 'queue', 'cancel', 'Enhance']
 */
export function commandList(models: readonly string[]): Record<string, unknown>[] {
  // Guild installs and DMs with the bot both take the commands (contexts 0 guild, 1 bot DM).
  const everywhere = { contexts: [0, 1], integration_types: [0] };
  return [
    {
      name: 'enhance',
      description: 'Upscale an image 4x with RealESRGAN',
      type: ApplicationCommandType.ChatInput,
      ...everywhere,
      options: [
        { name: 'image', description: 'The image (PNG, JPEG, WebP, GIF, TIFF, AVIF)', type: ApplicationCommandOptionType.Attachment, required: true },
        { name: 'model', description: 'Which model', type: ApplicationCommandOptionType.String, choices: models.slice(0, 25).map((m) => ({ name: MODEL_USES[m] ? `${m} (${MODEL_USES[m]})` : m, value: m })) },
        { name: 'scale', description: 'Output size (default 4x)', type: ApplicationCommandOptionType.Integer, choices: [2, 3, 4].map((s) => ({ name: `${s}x`, value: s })) },
        { name: 'raw', description: "The model's output without the gentle touch-up", type: ApplicationCommandOptionType.Boolean },
        {
          name: 'precision',
          description: 'int8: about twice as fast on a CPU, at a difference no one sees (default fp32)',
          type: ApplicationCommandOptionType.String,
          choices: ['fp32', 'int8', 'auto'].map((p) => ({ name: p, value: p })),
        },
        { name: 'report', description: 'Also a PDF summary', type: ApplicationCommandOptionType.Boolean },
      ],
    },
    { name: 'queue', description: 'Your jobs: position, progress, ETA', type: ApplicationCommandType.ChatInput, ...everywhere },
    { name: 'cancel', description: 'Cancel your jobs', type: ApplicationCommandType.ChatInput, ...everywhere },
    { name: ENHANCE_MESSAGE, type: ApplicationCommandType.Message, ...everywhere },
  ];
}

/** Registers the commands in one server (`guild`, at once) or globally. */
export async function registerCommands(rest: REST, application: string, guild: string, models: readonly string[]): Promise<void> {
  const route = guild ? Routes.applicationGuildCommands(application, guild) : Routes.applicationCommands(application);
  await rest.put(route, { body: commandList(models) });
}
