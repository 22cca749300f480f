/**
 * The application commands: `/enhance`, `/queue`, `/cancel` and the message command "Enhance". Registered at
 * start with a bulk overwrite (PUT), which is idempotent: the same list twice changes nothing, and a command
 * dropped from this list disappears.
 *
 * Names and descriptions come from the `discord.commands` catalogue section: English is the default, and each
 * Discord locale that `matchLocale` gives another catalogue for (`zh-CN` and, until there is a `zh-Hant`,
 * `zh-TW` → `zh-Hans`) carries that catalogue's words as its localization; a new language file adds its own.
 */
import { ApplicationCommandOptionType, ApplicationCommandType, Locale as DiscordLocale, Routes, type REST } from 'discord.js';
import { DEFAULT_LOCALE, hasText, matchLocale, say, type Languages, type Locale, type Logger, type TextValue } from '../../src/index.js';

/** The message context-menu command's name, as shown under Apps (in English; Discord sends this name whatever the person's language). */
export const ENHANCE_MESSAGE = 'Enhance';

/** What the list is said with: the project's catalogues, or a test's own folder of them (`loadLanguages`). */
export type CommandLanguages = Pick<Languages, 'say' | 'matchLocale' | 'has'>;
const CATALOGUES: CommandLanguages = { say, matchLocale, has: hasText };

/** Each Discord locale with a catalogue other than English, and that catalogue. */
function translatedLocales(languages: CommandLanguages): Array<[string, Locale]> {
  return Object.values(DiscordLocale).flatMap((tag): Array<[string, Locale]> => {
    const locale = languages.matchLocale(tag);
    return locale && locale !== DEFAULT_LOCALE ? [[tag, locale]] : [];
  });
}

/** What Discord allows (its docs, "Application Command Naming"): a slash command's or option's name is lower case. */
const CHAT_NAME = /^[-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$/u;
type Kind = 'chatName' | 'messageName' | 'description' | 'choice';

/** Why Discord would refuse `text` as a `kind` in `locale`, or undefined when it is fine. */
function refusal(text: string, kind: Kind, locale: Locale): string | undefined {
  if (kind === 'chatName' && (!CHAT_NAME.test(text) || text !== text.toLocaleLowerCase(locale))) return 'a command or option name is 1-32 lower-case letters, digits, - or _, no spaces';
  if (kind === 'messageName' && (text.length < 1 || text.length > 32)) return 'a message command name is 1-32 characters';
  if ((kind === 'description' || kind === 'choice') && (text.length < 1 || text.length > 100)) return 'a description or choice name is 1-100 characters';
  return undefined;
}

/** Builds the list, noting catalogue words Discord would refuse (left out, so the rest still registers). */
class Words {
  readonly problems: string[] = [];
  private readonly locales: Array<[string, Locale]>;

  constructor(private readonly languages: CommandLanguages) {
    this.locales = translatedLocales(languages);
  }

  /** `{ [field]: English, [field_localizations]: { 'zh-CN': … } }` for one catalogue key. */
  field(field: 'name' | 'description', key: string, kind: Kind, values?: Record<string, TextValue>): Record<string, unknown> {
    const english = this.languages.say(DEFAULT_LOCALE, { key, values });
    const localizations: Record<string, string> = {};
    for (const [tag, locale] of this.locales) {
      const text = this.languages.say(locale, { key, values });
      const why = refusal(text, kind, locale);
      if (why) this.problems.push(`${locale}.json ${key}: "${text}" is not used for ${tag}: ${why}`);
      else if (text !== english) localizations[tag] = text;
    }
    return { [field]: english, ...(Object.keys(localizations).length > 0 ? { [`${field}_localizations`]: localizations } : {}) };
  }

  /** Name and description of a command or option from `discord.commands.<id>`. */
  named(id: string): Record<string, unknown> {
    return { ...this.field('name', `discord.commands.${id}.name`, 'chatName'), ...this.field('description', `discord.commands.${id}.description`, 'description') };
  }

  choice(key: string, value: string | number, values?: Record<string, TextValue>): Record<string, unknown> {
    return { ...this.field('name', key, 'choice', values), value };
  }
}

/** The built-in models whose use the catalogue names beside them (`x4fast (photos, quick)`); a user's own shows its name. */
function useKey(model: string, languages: CommandLanguages): string | undefined {
  const key = `discord.commands.uses.${model}`;
  return languages.has(key) ? key : undefined;
}

/**
 * The command list, with the model choices from the manifest, and the catalogue words left out because Discord
 * would refuse them (a name with a capital letter or a space, too long).
 *
 * @example
 * commandList(['x4plus', 'x4fast']).commands.map((c) => c.name); // ['enhance', 'queue', 'cancel', 'Enhance']
 * commandList(['x4plus']).commands[0].name_localizations; // { 'zh-CN': '增强', 'zh-TW': '增强' }
 */
export function commandList(models: readonly string[], languages = CATALOGUES): { commands: Record<string, unknown>[]; problems: string[] } {
  const words = new Words(languages);
  // Guild installs and DMs with the bot both take the commands (contexts 0 guild, 1 bot DM).
  const everywhere = { contexts: [0, 1], integration_types: [0] };
  const modelChoice = (m: string) => {
    const use = useKey(m, languages);
    return use ? words.choice('discord.commands.modelChoice', m, { model: m, use: { key: use } }) : { name: m, value: m };
  };
  const commands = [
    {
      ...words.named('enhance'),
      type: ApplicationCommandType.ChatInput,
      ...everywhere,
      options: [
        { ...words.named('image'), type: ApplicationCommandOptionType.Attachment, required: true },
        { ...words.named('model'), type: ApplicationCommandOptionType.String, choices: models.slice(0, 25).map(modelChoice) },
        { ...words.named('scale'), type: ApplicationCommandOptionType.Integer, choices: [2, 3, 4].map((s) => words.choice('discord.scale', s, { scale: s })) },
        { ...words.named('format'), type: ApplicationCommandOptionType.String, choices: ['png', 'webp', 'jpeg', 'avif'].map((f) => ({ name: f, value: f })) },
        { ...words.named('raw'), type: ApplicationCommandOptionType.Boolean },
        { ...words.named('precision'), type: ApplicationCommandOptionType.String, choices: ['fp32', 'int8', 'auto'].map((p) => ({ name: p, value: p })) },
        { ...words.named('report'), type: ApplicationCommandOptionType.Boolean },
      ],
    },
    { ...words.named('queue'), type: ApplicationCommandType.ChatInput, ...everywhere },
    { ...words.named('cancel'), type: ApplicationCommandType.ChatInput, ...everywhere },
    { ...words.field('name', 'discord.commands.enhanceMessage.name', 'messageName'), type: ApplicationCommandType.Message, ...everywhere },
  ];
  return { commands, problems: words.problems };
}

/** Registers the commands in one server (`guild`, at once) or globally; catalogue words Discord would refuse are logged. */
export async function registerCommands(rest: REST, application: string, guild: string, models: readonly string[], log: Logger): Promise<void> {
  const route = guild ? Routes.applicationGuildCommands(application, guild) : Routes.applicationCommands(application);
  const { commands, problems } = commandList(models);
  for (const problem of problems) log.warn({ problem }, 'a command localization is left out');
  await rest.put(route, { body: commands });
}
