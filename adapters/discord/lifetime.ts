/**
 * The interaction token's lifetime. Discord's tokens last 15 minutes; `discord.interactionLifetimeMs` after the
 * interaction (14 min, leaving a minute for the last edit) the job's status message moves to an ordinary channel
 * message, so a long job (a large image on a CPU) still shows progress and gets its answer. The token's expiry is
 * kept with the job (`replyTo.interaction.expiresAt`), so a job recovered after a restart moves on time too.
 */
import { Routes, type REST } from 'discord.js';
import type { DiscordJob } from './answers.js';
import { oops, wordsFor, type DiscordContext } from './context.js';
import { cancelButton } from './interactions/buttons.js';
import { bold, percentBar, relativeTime } from './text.js';

/**
 * @example
 * const lifetimes = new InteractionLifetimes(ctx, rest);
 * lifetimes.watch(job); // on `queued`, and for each job recovered at start
 * lifetimes.end(job.id); // once it is answered
 */
export class InteractionLifetimes {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  /** `rest` is the door's own REST client, which outlives the gateway's. */
  constructor(
    private readonly ctx: DiscordContext,
    private readonly rest: REST,
  ) {}

  /** Moves `job` off its interaction when the token's time is up; a job answered by message has none to watch. */
  watch(job: DiscordJob): void {
    const { interaction } = job.request.replyTo;
    if (!interaction || this.timers.has(job.id)) return;
    const leave = () => void this.leave(job).catch((error) => oops(this.ctx, 'moving off the interaction', error));
    this.timers.set(job.id, setTimeout(leave, Math.max(0, interaction.expiresAt - Date.now())));
  }

  /** The job is being answered: its status message stays where it is. */
  end(job: string): void {
    clearTimeout(this.timers.get(job));
    this.timers.delete(job);
  }

  /** The door stops: no message moves any more. */
  stop(): void {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
  }

  /**
   * Notes on the interaction's reply that the status moved (while the token still works), then writes the job's
   * status anew, which `Answers.edit` posts in the channel now that the token is past its time.
   */
  private async leave(job: DiscordJob): Promise<void> {
    const { queue, secrets, log, progress, edits } = this.ctx;
    const now = await queue.getJob(job.id);
    if (!now || now.state === 'completed' || now.state === 'failed' || now.state === 'cancelled' || this.stopped) return;
    const { interaction } = job.request.replyTo;
    const token = interaction && secrets.open(interaction.sealed);
    const tiles = progress.get(job.id);
    const t = wordsFor(job);
    const name = bold(job.request.name);
    try {
      if (interaction && token) {
        await this.rest.patch(Routes.webhookMessage(interaction.application, token, '@original'), {
          body: { content: t('discord.moved', { name }), components: [] },
          auth: false,
        });
      }
    } catch (error) {
      log.info({ job: job.id, why: secrets.reason(error) }, 'could not note the move on the interaction reply');
    }
    const state = tiles ? percentBar(tiles.done, tiles.total) : { key: 'discord.waiting' };
    const content = now.etaMs > 0 ? t('discord.stateEta', { name, state, eta: relativeTime(now.etaMs) }) : t('discord.line', { name, text: state });
    edits.show(job, { content, components: [cancelButton(job.id, t)] }, true);
    log.info({ job: job.id }, 'interaction token lifetime over: answering by channel message');
  }
}
