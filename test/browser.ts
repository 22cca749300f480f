/**
 * A real browser for the web door's tests: Debian's chromium (`.ci/run` installs it) driven by playwright-core,
 * where the tests' screenshots go, and what a page's console and network said that a person would call broken.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Whether chromium is here at all: the browser tests are skipped without it. */
export const haveChromium = fs.existsSync(CHROMIUM);

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}

/** The folder a test's screenshots go to: $WEB_SHOTS, else `<tmp>/<name>`; made if missing. */
export function shotsDir(name: string): string {
  const dir = process.env.WEB_SHOTS ?? path.join(os.tmpdir(), name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Collects what went wrong on `page` as a person's browser would show it: console errors, and answers of 400 or
 * more (a favicon's 404, say). A page whose own answer is an error on purpose (a forged link's 403) is not a fault:
 * its document's status, and the console line chromium writes about it, are left out.
 */
export function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  const documents = new Set<string>();
  page.on('response', (response) => {
    const request = response.request();
    if (request.isNavigationRequest() && request.resourceType() === 'document') documents.add(response.url());
    else if (response.status() >= 400) problems.push(`${response.status()} ${response.url()}`);
  });
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    if (/^Failed to load resource/.test(message.text()) && documents.has(message.location().url)) return;
    problems.push(`console: ${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
  return problems;
}
