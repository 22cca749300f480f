/**
 * The web door in a real browser: playwright-core driving Debian's chromium (`.ci/run` installs it), on the real
 * service and the real x4fast, as a person uses the pages. Screenshots of the upload page, a running and a finished
 * job, at phone and desktop width, go to $WEB_SHOTS (default <tmp>/enhancer-web-shots).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readManifest } from '../src/models/manifest.js';
import { DEFAULT_MODELS_DIR } from '../src/paths.js';
import { haveChromium, launchChromium, shotsDir } from './browser.js';
import { scenePng, tempDir } from './helpers.js';
import { splitLink, startWeb, upload, type WebService } from './web-service.js';

let SHOTS: string;
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };

let browser: Browser;
let context: BrowserContext;
let dir: string;
let running: WebService | undefined;

/** What a job page showed over time: every status line and progress value, and the early preview's width. */
declare global {
  interface Window {
    seen: { status: string[]; progress: number[]; early: number };
  }
}
function record(): void {
  window.seen = { status: [], progress: [], early: 0 };
  const look = () => {
    const status = document.getElementById('status')?.textContent ?? '';
    if (status && window.seen.status.at(-1) !== status) window.seen.status.push(status);
    const bar = document.getElementById('progress') as HTMLProgressElement | null;
    if (bar && !bar.hidden && window.seen.progress.at(-1) !== bar.value / bar.max) window.seen.progress.push(bar.value / bar.max);
  };
  new MutationObserver(look).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
  document.addEventListener('load', (e) => {
    const img = e.target as HTMLImageElement;
    if (img.id === 'early-img') window.seen.early = img.naturalWidth;
  }, true);
}

/** A photo-like JPEG (the scene of src/bench), large enough for an early preview. */
async function photo(width: number, height: number, seed: number): Promise<Buffer> {
  return sharp(await scenePng(width, height, seed)).jpeg({ quality: 92 }).toBuffer();
}

/** The listed jobs of the upload page: name, state line and link, top first. */
function listed(page: Page) {
  return page.$$eval('#jobs li', (items) =>
    items.map((li) => ({ name: li.querySelector('.job-name')?.textContent, state: li.querySelector('.job-state')?.textContent, link: (li as HTMLElement).dataset.link })),
  );
}

async function shoot(page: Page, name: string): Promise<void> {
  for (const [width, viewport] of [['phone', PHONE], ['desktop', DESKTOP]] as const) {
    await page.setViewportSize(viewport);
    await page.screenshot({ path: path.join(SHOTS, `${name}-${width}.png`), fullPage: true });
    // Nothing wider than the screen: the model list's long names once pushed the options past a phone's width.
    expect(await page.evaluate(() => document.documentElement.scrollWidth), `${name} at ${width} width`).toBeLessThanOrEqual(viewport.width);
  }
}

/** The words a person reads on the page, without the language switch (which names every language in its own). */
function readable(page: Page): Promise<string> {
  return page.evaluate(() => {
    const choice = document.querySelector<HTMLElement>('.lang')!;
    choice.hidden = true;
    const text = document.querySelector('main')!.innerText;
    choice.hidden = false;
    return text;
  });
}

async function jobPage(link: string): Promise<Page> {
  const page = await context.newPage();
  await page.addInitScript(record);
  await page.goto(`${running!.base}${link}`);
  return page;
}

/** The page offers auto (the default, chosen per picture) and every model of the manifest (x4plus, x4fast, the anime scene). */
const MODELS = (await readManifest(DEFAULT_MODELS_DIR)).models.length + 1;

describe.skipIf(!haveChromium)('the web door in chromium', () => {
  beforeAll(async () => {
    SHOTS = shotsDir('enhancer-web-shots');
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });
  beforeEach(async () => {
    dir = tempDir('enhancer-webui-');
    context = await browser.newContext({ viewport: DESKTOP, acceptDownloads: true });
  });
  afterEach(async () => {
    await context.close();
    await running?.service.stop();
    running = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('two photos through the page: the second waits 2nd in line, its progress moves, its early preview shows, then the slider and a PNG exactly 4x', async () => {
    // Small tiles, so the run has many and the progress bar has somewhere to move.
    running = await startWeb(dir, {}, { ENHANCER_TILE: '96' });
    const page = await context.newPage();
    await page.goto(running.base);
    await expect.poll(() => page.locator('#model option').count()).toBe(MODELS);
    await shoot(page, 'upload');
    await page.setViewportSize(DESKTOP);
    const [first, second] = [await photo(480, 360, 1), await photo(480, 360, 2)];
    await page.setInputFiles('#files', [
      { name: 'first.jpg', mimeType: 'image/jpeg', buffer: first },
      { name: 'second.jpg', mimeType: 'image/jpeg', buffer: second },
    ]);
    await page.getByRole('button', { name: 'Enhance' }).click();
    await expect.poll(async () => (await listed(page)).filter((j) => j.link).length).toBe(2);
    const jobs = await listed(page);
    expect(jobs.map((j) => j.name)).toEqual(['second.jpg', 'first.jpg']);

    const job = await jobPage(jobs[0].link!);
    await job.waitForFunction(() => /^Running: \d+ of \d+ tiles/.test(document.getElementById('status')!.textContent!), undefined, { timeout: 120_000 });
    await shoot(job, 'job-running');
    await job.setViewportSize(DESKTOP);
    await job.locator('#result').waitFor({ state: 'visible', timeout: 120_000 });
    await shoot(job, 'job-done');
    await job.setViewportSize(DESKTOP);

    const seen = await job.evaluate(() => window.seen);
    expect(seen.status.filter((line) => line !== 'Connecting…')[0]).toMatch(/^Waiting: 2nd in line, done in about \d+ (s|min)$/);
    const moving = [...new Set(seen.progress.filter((p) => p > 0 && p < 1))];
    expect(moving.length, `progress seen: ${seen.progress.join(', ')}`).toBeGreaterThanOrEqual(2);
    expect(seen.early).toBeGreaterThan(0); // the region's width at output scale (276 px here)
    expect(await job.locator('#status').textContent()).toBe('Done');
    expect(await job.locator('#summary').textContent()).toContain('480x360 JPEG');
    expect(await job.locator('#summary').textContent()).toContain('1920x1440 PNG (4x)');

    // The slider moves the edge between before and after; Actual size shows the result at its full width.
    await job.locator('#slider').fill('20');
    expect(await job.locator('#after').evaluate((img) => img.style.clipPath)).toBe('inset(0px 0px 0px 20%)');
    await job.getByRole('button', { name: 'Actual size' }).click();
    expect(await job.locator('#compare').evaluate((el) => el.getBoundingClientRect().width)).toBe(1920);

    const [download] = await Promise.all([job.waitForEvent('download'), job.locator('#download-png').click()]);
    expect(download.suggestedFilename()).toBe('second.enhanced.png');
    const png = fs.readFileSync((await download.path())!);
    expect(await sharp(png).metadata()).toMatchObject({ format: 'png', width: 480 * 4, height: 360 * 4 });
    // Both listed jobs end as done on the upload page, which followed them too.
    await expect.poll(async () => (await listed(page)).map((j) => j.state), { timeout: 60_000 }).toEqual(['Done', 'Done']);
  }, 240_000);

  it('asks before a job over limits.confirmOver, queues nothing until a press, and runs the faster model pressed', async () => {
    // Over 1 s is long here: an x4plus job asks first.
    running = await startWeb(dir, {}, { ENHANCER_CONFIRM_OVER: '1' });
    const page = await context.newPage();
    await page.goto(running.base);
    await expect.poll(() => page.locator('#model option').count()).toBe(MODELS);
    await page.selectOption('#model', 'x4plus');
    await page.setInputFiles('#files', [{ name: 'cat.png', mimeType: 'image/png', buffer: fs.readFileSync(path.join(import.meta.dirname, '..', 'models', 'calibration', 'chelsea.png')) }]);
    await page.getByRole('button', { name: 'Enhance' }).click();
    const question = page.locator('#jobs li', { hasText: 'cat.png' });
    await expect.poll(() => question.locator('.job-state').textContent()).toMatch(/^With x4plus this image would take about .+ on this machine\.$/);
    const buttons = question.locator('button.confirm');
    expect(await buttons.allTextContents()).toEqual([expect.stringMatching(/^Run x4plus \(about .+\)$/), expect.stringMatching(/^Run x4fast \(about .+\)$/)]);
    expect(running.service.lines('job queued')).toEqual([]);
    await buttons.nth(1).click();
    await expect.poll(async () => (await listed(page)).map((j) => j.state), { timeout: 120_000 }).toEqual(['Done']);
    const [job] = await listed(page);
    const { path: p, query } = splitLink(job.link!);
    const state = (await (await fetch(`${running.base}${p}/state?${query}`)).json()) as { result: { options: { model: string } } };
    expect(state.result.options.model).toBe('x4fast');
    expect(running.service.lines('job queued')).toHaveLength(1);
  }, 240_000);

  it('says what Automatic chose and why, and its other-model button cancels the job and runs the file with that model', async () => {
    running = await startWeb(dir, {}, { ENHANCER_MODEL: 'auto', ENHANCER_TILE: '32' });
    const page = await context.newPage();
    await page.goto(running.base);
    await expect.poll(() => page.locator('#model').inputValue()).toBe('auto');
    // The cat at 384x384: x4plus in 144 tiles is still running when the other model is pressed.
    const cat = await sharp(path.join(import.meta.dirname, '..', 'models', 'calibration', 'chelsea.png')).resize(384, 384).png().toBuffer();
    await page.setInputFiles('#files', [{ name: 'cat.png', mimeType: 'image/png', buffer: cat }]);
    await page.getByRole('button', { name: 'Enhance' }).click();
    const line = page.locator('#jobs li', { hasText: 'photo: x4plus model' });
    await line.waitFor();
    const other = line.locator('button.other-model');
    expect(await other.textContent()).toMatch(/^Use x4fast instead \(about .+\)$/);
    await other.click();
    // The x4plus job is cancelled and the file queued again with x4fast, which runs to the end.
    await running.service.count('job queued', 2);
    expect(running.service.lines('job queued').map((l) => l.model)).toEqual(['x4plus', 'x4fast']);
    await running.service.count('job completed', 1);
    await expect.poll(async () => (await listed(page)).map((j) => j.state), { timeout: 60_000 }).toContain('Cancelled: cancelled by its owner');
  }, 240_000);

  it('a non-image, a damaged image and a file over the byte limit are each listed with their one-line reason', async () => {
    running = await startWeb(dir, { limits: { maxFileBytes: 1_000_000 } });
    const page = await context.newPage();
    await page.goto(running.base);
    await expect.poll(() => page.locator('#model option').count()).toBe(MODELS);
    const png = await scenePng(64, 64);
    await page.setInputFiles('#files', [
      { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not an image at all') },
      { name: 'cut.jpg', mimeType: 'image/jpeg', buffer: (await photo(200, 200, 3)).subarray(0, 3000) },
      { name: 'huge.png', mimeType: 'image/png', buffer: Buffer.concat([png, Buffer.alloc(1_500_000)]) },
    ]);
    await page.getByRole('button', { name: 'Enhance' }).click();
    await expect
      .poll(async () => Object.fromEntries((await listed(page)).map((j) => [j.name, j.state])), { timeout: 60_000 })
      .toEqual({
        'notes.txt': 'not an image in a supported format (PNG, JPEG, WebP, GIF, TIFF, AVIF)',
        'cut.jpg': expect.stringMatching(/^(Failed: )?the file is damaged or incomplete: send it again, or export it anew$/),
        'huge.png': 'the file is 1.5 MB, over the limit of 1.0 MB',
      });
  }, 120_000);

  it('Cancel on a running job stops it and the page says so', async () => {
    running = await startWeb(dir, {}, { ENHANCER_TILE: '64' });
    const page = await context.newPage();
    await page.goto(running.base);
    await page.setInputFiles('#files', [{ name: 'big.jpg', mimeType: 'image/jpeg', buffer: await photo(960, 720, 4) }]);
    await page.getByRole('button', { name: 'Enhance' }).click();
    await expect.poll(async () => (await listed(page))[0]?.link).toBeTruthy();
    const job = await jobPage((await listed(page))[0].link!);
    await job.waitForFunction(() => /^Running: \d+ of/.test(document.getElementById('status')!.textContent!), undefined, { timeout: 120_000 });
    await job.getByRole('button', { name: 'Cancel' }).click();
    await job.locator('#reason').waitFor({ state: 'visible', timeout: 60_000 });
    expect(await job.locator('#status').textContent()).toBe('Cancelled');
    expect(await job.locator('#reason').textContent()).toMatch(/cancel/i);
    expect(await job.locator('#result').isVisible()).toBe(false);
  }, 240_000);

  it('Enhance again with other options keeps the current result on screen until the new one has arrived', async () => {
    running = await startWeb(dir, {}, { ENHANCER_TILE: '64' });
    const first = await upload(running.base, [{ name: 'again.jpg', bytes: await photo(192, 144, 6) }], { scale: '2' });
    const link = first.body.jobs![0].link!;
    const page = await jobPage(link);
    await page.locator('#result').waitFor({ state: 'visible', timeout: 180_000 });
    await expect.poll(() => page.locator('#after').evaluate((img: HTMLImageElement) => img.naturalWidth)).toBe(384);
    const oldAfter = await page.locator('#after').getAttribute('src');
    // Every line the form says about the new job, with what the slider showed at that moment.
    await page.evaluate(() => {
      const shown: Array<{ text: string; after: string; width: number; visible: boolean }> = [];
      (window as unknown as { shown: typeof shown }).shown = shown;
      const status = document.getElementById('again-status')!;
      new MutationObserver(() => {
        const after = document.getElementById('after') as HTMLImageElement;
        if (status.textContent && shown.at(-1)?.text !== status.textContent) {
          shown.push({ text: status.textContent, after: after.getAttribute('src')!, width: after.naturalWidth, visible: !document.getElementById('result')!.hidden });
        }
      }).observe(status, { childList: true, characterData: true, subtree: true });
    });
    expect(await page.locator('#again-scale').inputValue()).toBe('2');
    await page.locator('#again-scale').selectOption('4');
    await page.getByRole('button', { name: 'Enhance again' }).click();
    await expect.poll(() => page.locator('#again-status').textContent(), { timeout: 180_000 }).toBe('Done: the result above is the new one');

    const shown = await page.evaluate(() => (window as unknown as { shown: Array<{ text: string; after: string; width: number; visible: boolean }> }).shown);
    const meanwhile = shown.slice(0, -1);
    expect(meanwhile.map((s) => s.text)).toEqual(expect.arrayContaining(['Uploading…', 'Queued', expect.stringMatching(/^(Next in line|Waiting|Running)/), 'Finishing: loading the new result']));
    for (const s of meanwhile) expect(s, s.text).toMatchObject({ after: oldAfter, width: 384, visible: true });
    // Then the new result, at the new link.
    expect(await page.locator('#after').evaluate((img: HTMLImageElement) => img.naturalWidth)).toBe(768);
    expect(await page.locator('#after').getAttribute('src')).not.toBe(oldAfter);
    expect(page.url()).not.toBe(`${running.base}${link}`);
    expect(page.url()).toMatch(/\/job\/\w+\?e=\d+&s=/);
    expect(await page.locator('#summary').textContent()).toContain('768x576 PNG (4x)');
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#download-png').click()]);
    expect(await sharp(fs.readFileSync((await download.path())!)).metadata()).toMatchObject({ format: 'png', width: 768, height: 576 });
    // The first job's link still shows its own 2x result.
    const before = await (await fetch(`${running.base}${splitLink(link).path}/file/result?${splitLink(link).query}`)).arrayBuffer();
    expect(await sharp(Buffer.from(before)).metadata()).toMatchObject({ width: 384, height: 288 });
  }, 420_000);

  it('a Chinese browser gets the pages in Chinese; the switch turns them English and the choice is remembered', async () => {
    running = await startWeb(dir);
    const zh = await browser.newContext({ viewport: DESKTOP, locale: 'zh-CN' });
    // The words travel in a JSON data block: the strict CSP stays, and nothing on the pages breaks it.
    const violations: string[] = [];
    await zh.exposeFunction('violated', (what: string) => violations.push(what));
    await zh.addInitScript(() =>
      document.addEventListener('securitypolicyviolation', (e) => (window as unknown as { violated: (what: string) => void }).violated(`${e.violatedDirective} ${e.blockedURI}`)),
    );
    try {
      const page = await zh.newPage();
      await page.goto(running.base);
      await expect.poll(() => page.locator('#model option').count()).toBe(MODELS);
      expect(await page.locator('html').getAttribute('lang')).toBe('zh-Hans');
      expect(await page.title()).toBe('图片增强');
      expect(await page.locator('h1').textContent()).toBe('图片增强');
      expect(await page.locator('.drop-title').textContent()).toBe('选择图片，或把图片拖到这里');
      expect(await page.locator('#limits').textContent()).toMatch(/^支持 PNG、JPEG、WebP、GIF、TIFF 或 AVIF；每张不超过 [\d.]+ MB、[\d.]+ 百万像素$/);
      expect(await page.locator('#model option[value="x4fast"]').textContent()).toBe('照片，快速');
      expect(await page.locator('#tune option[value="gentle"]').textContent()).toBe('轻度润饰');
      expect(await page.locator('#scale option[value="4"]').textContent()).toBe('4 倍');
      const upload = await readable(page);
      for (const english of ['Enhance', 'Choose images', 'Options', 'Model', 'Scale', 'PDF summary', 'gentle touch-up']) expect(upload).not.toContain(english);
      await shoot(page, 'upload-zh');
      await page.setViewportSize(DESKTOP);

      // A bad file's reason and a tiny image's whole run, in Chinese.
      await page.setInputFiles('#files', [
        { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not an image at all') },
        { name: 'tiny.png', mimeType: 'image/png', buffer: await scenePng(64, 48) },
      ]);
      await page.getByRole('button', { name: '开始增强' }).click();
      await expect
        .poll(async () => Object.fromEntries((await listed(page)).map((j) => [j.name, j.state])), { timeout: 60_000 })
        .toEqual({ 'notes.txt': '不是受支持格式的图片（PNG、JPEG、WebP、GIF、TIFF、AVIF）', 'tiny.png': '完成' });
      expect(await page.locator('#jobs a').textContent()).toBe('打开任务页面');
      const link = (await listed(page)).find((j) => j.link)!.link!;
      const job = await zh.newPage();
      await job.goto(`${running.base}${link}`);
      await job.locator('#result').waitFor({ state: 'visible', timeout: 60_000 });
      expect(await job.locator('html').getAttribute('lang')).toBe('zh-Hans');
      expect(await job.title()).toBe('tiny.png：图片增强');
      expect(await job.locator('#status').textContent()).toBe('完成');
      expect(await job.locator('#download-png').textContent()).toMatch(/^下载 PNG（256x192，\d+ KB）$/);
      const summary = await job.locator('#summary').innerText();
      expect(summary).toContain('输出');
      expect(summary).toContain('256x192 PNG（4 倍），');
      expect(summary).toContain('保留至');
      const shown = await readable(job);
      expect(shown).toContain('处理前后对比');
      expect(shown).toContain('拖动滑块进行对比。');
      for (const english of ['Done', 'Download', 'Summary', 'Before and after', 'Zoom', 'Enhance again', 'Input', 'kept until', 'runs']) expect(shown).not.toContain(english);
      await job.getByRole('button', { name: '实际大小' }).click();
      expect(await job.locator('#zoom').textContent()).toBe('适应屏幕');
      await shoot(job, 'job-done-zh');
      await job.setViewportSize(DESKTOP);

      // The switch: English at once, and still English after a reload and on a new page of the same browser.
      await Promise.all([job.waitForEvent('load'), job.locator('#lang').selectOption('en')]);
      await job.locator('#result').waitFor({ state: 'visible', timeout: 60_000 });
      expect(await job.locator('html').getAttribute('lang')).toBe('en');
      expect(await job.locator('#status').textContent()).toBe('Done');
      expect(await job.locator('#download-png').textContent()).toMatch(/^Download PNG \(256x192, \d+ KB\)$/);
      expect(await readable(job)).not.toMatch(/[\u4e00-\u9fff]/);
      await job.reload();
      await job.locator('#result').waitFor({ state: 'visible', timeout: 60_000 });
      expect(await job.locator('h2').first().textContent()).not.toBe('处理前后对比');
      expect(await job.locator('#summary').innerText()).toContain('256x192 PNG (4x)');
      // The upload page, reloaded, is English too, and still lists the job it uploaded (now said in English).
      await page.reload();
      expect(await page.locator('h1').textContent()).toBe('image-enhancer');
      await expect.poll(async () => (await listed(page)).map((j) => [j.name, j.state]), { timeout: 30_000 }).toEqual([['tiny.png', 'Done']]);
      expect(await page.locator('#jobs a').textContent()).toBe('Open the job page');
      const fresh = await zh.newPage();
      await fresh.goto(running.base);
      expect(await fresh.locator('h1').textContent()).toBe('image-enhancer');
      expect(await fresh.getByRole('button', { name: 'Enhance', exact: true }).isVisible()).toBe(true);
      expect(await fresh.locator('#lang').inputValue()).toBe('en');
      // And back to Chinese from the upload page.
      await Promise.all([fresh.waitForEvent('load'), fresh.locator('#lang').selectOption('zh-Hans')]);
      expect(await fresh.locator('h1').textContent()).toBe('图片增强');
      expect(violations).toEqual([]);
    } finally {
      await zh.close();
    }
  }, 180_000);

  it('after a restart mid-job the same link shows the result', async () => {
    // No grace: the running job is put back for the next start instead of finishing during the stop.
    running = await startWeb(dir, { shutdownGraceMs: 0 }, { ENHANCER_TILE: '64' });
    const { port } = running;
    const page = await context.newPage();
    await page.goto(running.base);
    await page.setInputFiles('#files', [{ name: 'restart.jpg', mimeType: 'image/jpeg', buffer: await photo(640, 480, 5) }]);
    await page.getByRole('button', { name: 'Enhance' }).click();
    await expect.poll(async () => (await listed(page))[0]?.link).toBeTruthy();
    const link = (await listed(page))[0].link!;
    const job = await jobPage(link);
    await job.waitForFunction(() => /^Running: \d+ of/.test(document.getElementById('status')!.textContent!), undefined, { timeout: 120_000 });
    expect(await running.service.stop()).toEqual({ code: 0, signal: null });
    running = await startWeb(dir, { shutdownGraceMs: 0 }, { ENHANCER_TILE: '64' }, port);
    await job.close();

    const again = await jobPage(link);
    await again.locator('#result').waitFor({ state: 'visible', timeout: 180_000 });
    const [download] = await Promise.all([again.waitForEvent('download'), again.locator('#download-png').click()]);
    expect(await sharp(fs.readFileSync((await download.path())!)).metadata()).toMatchObject({ width: 2560, height: 1920 });
  }, 300_000);
});
