/**
 * `enhancer serve` (`npm start`): the composition root. Loads the config, takes the data folder, builds the
 * enabled doors, starts the service and stops it cleanly on SIGINT, SIGTERM or SIGHUP, or when its launcher
 * dies. It lives beside the adapters because the core in src/ never imports one.
 */
import path from 'node:path';
import {
  ConfigError,
  createLogger,
  DataFolderLocked,
  installLastResort,
  loadConfig,
  lockDataFolder,
  OperatorError,
  reasonOf,
  roleProblem,
  ROLES,
  startService,
  StartStopped,
  type Config,
  type DataLock,
  type Door,
  type EnhanceQueue,
  type Logger,
  type Role,
} from '../src/index.js';
import { discordSection } from './discord/config.js';
import { DiscordDoor } from './discord/discord.js';
import { hotfolderSection } from './hotfolder/config.js';
import { HotFolderDoor } from './hotfolder/hot-folder.js';
import type { ResultLinks } from './kit/result-links.js';
import { telegramSection } from './telegram/config.js';
import { TelegramDoor } from './telegram/telegram.js';
import { webSection } from './web/config.js';
import { WebDoor } from './web/web.js';

/** Every adapter's config section: `enhancer serve` reads and checks them all. */
export const SECTIONS = [hotfolderSection, telegramSection, discordSection, webSection] as const;
export type ServeConfig = Config<typeof SECTIONS>;

/** The doors the config turns on, each with the queue. */
export function createDoors(config: ServeConfig, queue: EnhanceQueue, logger: Logger): Door[] {
  const doors: Door[] = [];
  const web = config.sections.web;
  // Chat answers link to the web door's job pages only when people can reach it (web.publicUrl).
  let links: ResultLinks | undefined;
  // First, so a port in use or a missing access key stops start-up before any other door has started.
  if (web.port !== 0) {
    const { maxPixels, maxFileBytes, queuedPerOwner } = config.limits;
    const from = { port: config.origin('web.port'), host: config.origin('web.host') };
    const door = new WebDoor({ queue, config: web, stateDir: path.join(config.data, 'web'), maxPixels, maxFileBytes, queuedPerOwner, defaultModel: config.model, modelsDir: config.models, from, logger });
    doors.push(door);
    if (web.publicUrl) links = door.resultLinks(web.publicUrl);
  } else if (web.publicUrl) {
    logger.warn('web.publicUrl is set but the web page is off (web.port 0): chat answers carry no link');
  }
  const hotfolder = config.sections.hotfolder;
  if (hotfolder.enabled) {
    doors.push(
      new HotFolderDoor({
        queue,
        inbox: hotfolder.inbox,
        outbox: hotfolder.outbox,
        stateDir: path.join(config.data, 'hotfolder'),
        presets: hotfolder.presets,
        format: hotfolder.format,
        pdf: hotfolder.pdf,
        settleMs: hotfolder.settleMs,
        locale: hotfolder.locale,
        maxFileBytes: config.limits.maxFileBytes,
        logger,
      }),
    );
  }
  const telegram = config.sections.telegram;
  if (telegram.enabled && telegram.token) {
    const { maxPixels, maxFileBytes, queuedPerOwner } = config.limits;
    doors.push(new TelegramDoor({ queue, config: telegram, stateDir: path.join(config.data, 'telegram'), maxPixels, maxFileBytes, queuedPerOwner, logger, links }));
  }
  const discord = config.sections.discord;
  if (discord.token) {
    const { maxPixels, maxFileBytes } = config.limits;
    doors.push(new DiscordDoor({ queue, config: discord, maxFileBytes, maxPixels, stateDir: path.join(config.data, 'discord'), modelsDir: config.models, logger, links }));
  }
  if (doors.length === 0) logger.warn('every front door is turned off: jobs left in the spool run, nothing new comes in');
  return doors;
}

/** The models the enabled adapters' presets name, to be prepared before start. */
export function presetModels(config: ServeConfig): string[] {
  const hotfolder = config.sections.hotfolder;
  return hotfolder.enabled ? Object.values(hotfolder.presets).flatMap((p) => (p.model ? [p.model] : [])) : [];
}

/**
 * A repeat of a signal within this long of the first is a copy, not a person asking to stop at once: a terminal's
 * Ctrl-C reaches `npm start` and its script (they share the foreground process group) and npm passes its copy on
 * too (npm/cli#5021), so one Ctrl-C arrives twice, 0.4-0.6 ms apart (npm 11, five tries in a pseudo-terminal).
 * Without the window that Ctrl-C exited at once with 130, the running job stopped and left for the next start.
 */
const REPEAT_MS = 1_000;

/**
 * Resolves with what asked the service to stop: SIGINT, SIGTERM or SIGHUP, or `launcher gone` when the IPC channel
 * to bin/enhancer.js closes (the launcher died, even by SIGKILL, which it cannot pass on). Caught from the start,
 * so a request that arrives while models load still stops cleanly; a later signal exits at once.
 */
function stopRequests(): Promise<string> {
  let firstAt: number | undefined;
  return new Promise((resolve) => {
    const ask = (reason: string) => {
      if (firstAt !== undefined) return false;
      firstAt = Date.now();
      resolve(reason);
      return true;
    };
    const onSignal = (name: NodeJS.Signals) => {
      if (ask(name) || Date.now() - firstAt! < REPEAT_MS) return;
      process.exit(130);
    };
    for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(name, onSignal);
    if (process.send) {
      process.once('disconnect', () => ask('launcher gone'));
      // A 'disconnect' listener holds the channel, which would keep this process alive after it has stopped.
      process.channel?.unref();
    }
  });
}

/**
 * The role from `serve`'s arguments: `--role front|worker|all` (or `--role=…`), `all` when left out.
 *
 * @example
 * parseRole(['--role', 'worker']); // 'worker'
 */
export function parseRole(args: readonly string[]): Role {
  let role: string = 'all';
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--role') role = args[++i] ?? '';
    else if (arg.startsWith('--role=')) role = arg.slice('--role='.length);
    else throw new OperatorError(`serve: unknown argument ${JSON.stringify(arg)} (serve takes only --role ${ROLES.join('|')})`);
  }
  if (!(ROLES as readonly string[]).includes(role)) throw new OperatorError(`serve: --role must be one of ${ROLES.join(', ')} (got ${JSON.stringify(role)})`);
  return role as Role;
}

/** Runs the service until a signal; returns the exit code. `args` are those after `serve`. */
export async function serve(args: readonly string[] = []): Promise<number> {
  let config: ServeConfig;
  let log: Logger;
  let role: Role;
  try {
    role = parseRole(args);
    config = loadConfig({ sections: SECTIONS });
    log = createLogger({ level: config.logLevel, format: config.logFormat, colour: config.logColour });
  } catch (error) {
    // A bad value in the config or in LOG_FORMAT.
    if (!(error instanceof ConfigError) && !(error instanceof OperatorError)) throw error;
    process.stderr.write(`error: ${(error as Error).message}\n`);
    return 2;
  }
  installLastResort(log);
  const asked = stopRequests();

  const problem = roleProblem(role, config);
  if (problem) {
    process.stderr.write(`error: ${problem}\n`);
    return 2;
  }

  // One service per data folder, taken before anything reads the spool or watches the inbox. A worker on Redis
  // keeps nothing there but its result cache (written by rename), so several may share one folder.
  let lock: DataLock | undefined;
  try {
    if (role !== 'worker') lock = await lockDataFolder(config.data);
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    process.stderr.write(`error: ${error instanceof DataFolderLocked ? error.message : `cannot lock the data folder ${config.data} (${why})`}\n`);
    return 1;
  }

  // A stop asked for while the doors are checked cuts the checks short (a platform that never answers).
  const stopAsked = new AbortController();
  void asked.then(() => stopAsked.abort());
  let service;
  try {
    service = await startService({ config, doors: (queue) => createDoors(config, queue, log), logger: log, models: presetModels(config), role, signal: stopAsked.signal });
  } catch (error) {
    if (error instanceof StartStopped) {
      log.info({ reason: await asked }, 'stopped while starting');
      log.flush?.();
      await lock?.release();
      return 0;
    }
    process.stderr.write(`error: ${reasonOf(error)}\n`);
    log.flush?.();
    await lock?.release();
    // A start that failed part way undid what it started (service.ts); should anything still hold the process,
    // it must not stay up, deaf to signals, after its one line.
    leaveIfHeld(log, 'after a failed start');
    return 1;
  }
  const reason = await asked;
  log.info({ reason }, 'shutting down (a second signal stops at once)');
  await service.stop();
  await lock?.release();
  leaveIfHeld(log, 'after stopping');
  return 0;
}

/** After the service stopped, how long the process may take to end by itself. */
const HELD_EXIT_MS = 2_000;

/**
 * Ends the process if something still holds it `HELD_EXIT_MS` after the service stopped: a chat platform's
 * socket that never answers keeps a request of a delivery open for grammY's 500 s timeout, and a stop signal must
 * end the service within its grace whatever a door is doing. Nothing is lost by leaving: an answer not confirmed
 * is delivered at the next start. Unref'd: it fires only if the process would otherwise stay.
 */
function leaveIfHeld(log: Logger, when: string): void {
  setTimeout(() => {
    log.warn({ open: process.getActiveResourcesInfo().filter((r) => r !== 'Timeout') }, `the process did not end by itself ${when}; ending it`);
    log.flush?.();
    process.exit();
  }, HELD_EXIT_MS).unref();
}
