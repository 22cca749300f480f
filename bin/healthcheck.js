#!/usr/bin/env node
// The container's HEALTHCHECK (Dockerfile): asks the service's /healthz on this machine and exits 0 when it says
// 200, else 1 with the failing checks on one line (what `docker inspect` shows under State.Health). Plain node,
// no curl in the image and nothing from dist/ loaded, so a probe costs one short process (0.15 s wall,
// measured, nearly all of it node's own start).
// The port and address come from the same variables the service reads (ENHANCER_HTTP_PORT, ENHANCER_HTTP_HOST);
// a port set only in the config file is not seen here, so set it by variable in a container.
const port = Number(process.env.ENHANCER_HTTP_PORT || 0);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.log(`health endpoint off (ENHANCER_HTTP_PORT=${process.env.ENHANCER_HTTP_PORT ?? ''}): nothing to ask`);
  process.exit(0);
}
// A service listening on every address is reached on loopback.
const listen = process.env.ENHANCER_HTTP_HOST || '127.0.0.1';
const host = listen === '0.0.0.0' ? '127.0.0.1' : listen === '::' ? '[::1]' : listen.includes(':') ? `[${listen}]` : listen;
try {
  // Below Docker's own timeout (10 s), so the answer is ours, not "timed out".
  const response = await fetch(`http://${host}:${port}/healthz`, { signal: AbortSignal.timeout(8_000) });
  const body = await response.text();
  if (response.status === 200) process.exit(0);
  let line = body.trim();
  try {
    line = JSON.parse(body).checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.problem}`).join('; ');
  } catch {}
  console.log(`unhealthy (${response.status}): ${line}`);
} catch (error) {
  console.log(`no answer from http://${host}:${port}/healthz: ${error.cause?.code ?? error.message}`);
}
process.exit(1);
