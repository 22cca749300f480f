/**
 * A real `redis-server` of the test's own: a free port on 127.0.0.1, its own folder, the append-only file on
 * (`appendfsync always`, so a restart keeps every accepted write), and `restart()` on the same port and folder,
 * as a Redis restarted by its operator. `redisAvailable` says whether one can be started here at all: tests
 * skip with that message only where `redis-server` is not installed (.ci/run makes sure it is).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from './helpers.js';
import { freePort } from './http.js';

/** Why Redis tests cannot run here, or undefined when they can. */
export const redisMissing: string | undefined =
  spawnSync('redis-server', ['--version']).status === 0 ? undefined : 'redis-server is not installed (apt-get install redis-server); the Redis tests are skipped';

export class RedisServer {
  private child: ChildProcess | undefined;
  private constructor(
    readonly port: number,
    readonly dir: string,
    readonly password?: string,
  ) {}

  /** With the password in it when the server has one. */
  get url(): string {
    return `redis://${this.password ? `:${this.password}@` : ''}127.0.0.1:${this.port}`;
  }

  /** `password`: the server requires it (`requirepass`). */
  static async start(password?: string): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), tempDir('enhancer-redis-'), password);
    await server.launch();
    return server;
  }

  /** Starts the server and resolves once it accepts connections. */
  private async launch(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--daemonize', 'no'];
    if (this.password) args.push('--requirepass', this.password);
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
        if (out.includes('Ready to accept connections')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${out.slice(-500)}`)));
    });
    child.stdout!.resume();
  }

  /** Stops it as an operator would (SIGTERM: it writes what it has and exits), waiting until it is gone. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await gone;
  }

  /** Stops it and starts it again on the same port and folder. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** Stops it and removes its folder. */
  async remove(): Promise<void> {
    await this.stop();
    fs.rmSync(path.resolve(this.dir), { recursive: true, force: true });
  }
}
