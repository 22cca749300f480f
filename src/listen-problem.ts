/**
 * The one line for a listener that could not start, naming the setting each value came from: the web door and the
 * health endpoint say the same things about a port in use or a host that is not this machine's.
 */

export interface Listener {
  /** What listens, as the line starts: `web`, `http`. */
  name: string;
  port: number;
  host: string;
  /** Where the port and host were set: `$ENHANCER_WEB_PORT`, `web.port in config/enhancer.json or the defaults`. */
  from: { port: string; host: string };
  /** Said after a port in use, e.g. `0 turns the web page off`. */
  portHint?: string;
}

/**
 * @example
 * listenProblem(Object.assign(new Error(), { code: 'EADDRINUSE' }), { name: 'web', port: 8080, host: '127.0.0.1', from: { port: '$ENHANCER_WEB_PORT', host: 'web.host' } });
 * // 'web: port 8080 (from $ENHANCER_WEB_PORT) is already in use on 127.0.0.1; stop what uses it or set another port'
 */
export function listenProblem(error: NodeJS.ErrnoException, { name, port, host, from, portHint }: Listener): string {
  switch (error.code) {
    case 'EADDRINUSE':
      return `${name}: port ${port} (from ${from.port}) is already in use on ${host}; stop what uses it or set another port${portHint ? ` (${portHint})` : ''}`;
    case 'EACCES':
      return `${name}: no permission to listen on port ${port} (from ${from.port}); ports below 1024 need privileges`;
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `${name}: host ${JSON.stringify(host)} (from ${from.host}) is not an address of this machine`;
    default:
      return `${name}: cannot listen on ${host}:${port} (from ${from.host} and ${from.port}): ${error.code ?? error.message}`;
  }
}
