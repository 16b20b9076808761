/**
 * The web console in a real browser: Debian's Chromium driven by playwright-core, against a real
 * server on a free port with a fresh data directory. Every step waits for a DOM state and asserts
 * values (never durations). With AIAAS_SCREENSHOTS=1 (`npm run screenshots`) it also saves a
 * screenshot of each page under docs/images/.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { pino } from 'pino';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import type { Dataset } from '../../src/data/dataset.ts';
import { encodeIdx } from '../../src/data/idx.ts';
import { loadMnistPackage } from '../../src/data/mnist-package.ts';
import { consoleContentSecurityPolicy } from '../../src/http/routes/console.ts';
import { randomLlamaGguf } from '../../src/runtimes/gguf/random-llama.ts';
import { generateMasterKey } from '../../src/security/key-ring.ts';
import { startServer, type RunningServer } from '../../src/startup/start.ts';

const chromiumPath = '/usr/bin/chromium';
const root = fileURLToPath(new URL('../..', import.meta.url));
const screenshotDir = process.env.AIAAS_SCREENSHOTS === '1' ? join(root, 'docs/images') : undefined;

const spec = {
  name: 'digits',
  // The model takes 0–255 pixels as the IDX file holds them; the console sends its drawing so.
  input: { shape: [28, 28], scale: 1 / 255 },
  layers: [
    { type: 'flatten' },
    { type: 'dense', units: 64, activation: 'relu' },
    { type: 'dense', units: 10, activation: 'softmax' },
  ],
  compile: { optimizer: { type: 'adam', learningRate: 0.003 }, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] },
};

function idx(dataset: Dataset): { images: Buffer; labels: Buffer } {
  return {
    images: Buffer.from(encodeIdx({ dataType: 'uint8', dims: [dataset.count, 28, 28], data: Uint8Array.from(dataset.features, (value) => Math.round(value * 255)) })),
    labels: Buffer.from(encodeIdx({ dataType: 'uint8', dims: [dataset.count], data: Uint8Array.from(dataset.labels) })),
  };
}

let server: RunningServer;
let dataDir: string;
let profileDir: string;
let browser: BrowserContext;
let page: Page;
let adminKey: string;
const browserErrors: string[] = [];

async function screenshot(name: string): Promise<void> {
  if (screenshotDir === undefined) return;
  await page.evaluate(() => document.fonts.ready);
  // Full-page shots of a scrolled page would draw the sticky top bar mid-page.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(screenshotDir, `console-${name}.png`), fullPage: true });
}

async function goTo(path: string): Promise<void> {
  // Through the app's own links, as a person would, so client-side routing is exercised too.
  await page.locator(`nav#nav a[href="/console${path}"]`).click();
  await page.locator('#page-title').waitFor();
}

beforeAll(async () => {
  // The suite needs the built console (npm install builds it); build it when a checkout has none.
  if (!existsSync(join(root, 'dist/console/index.html'))) execFileSync('npm', ['run', 'build:console'], { cwd: root, stdio: 'inherit' });
  if (screenshotDir !== undefined) await mkdir(screenshotDir, { recursive: true });
  dataDir = await mkdtemp(join(tmpdir(), 'aiaas-console-'));
  profileDir = await mkdtemp(join(tmpdir(), 'aiaas-chromium-'));
  const config = loadConfig({
    flags: { dataDir, port: 0, masterKey: generateMasterKey(), logLevel: 'silent', llmThreads: 1, llmParallel: 1, llmContextLength: 512, llmDefaultMaxTokens: 16, llmMaxTokens: 64 },
    env: {},
  });
  server = await startServer(config, { handleSignals: false, printSecret: () => undefined, logger: pino({ level: 'silent' }) });
  adminKey = server.context.bootstrap.generatedKey!;
  browser = await chromium.launchPersistentContext(profileDir, {
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 860 },
    deviceScaleFactor: 1,
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  // A plan prices the tenant's usage from now on, so the Usage page has costs to show.
  const headers = { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' };
  const plan = { name: 'starter', currency: 'USD', prices: { perThousandPredictions: 500000, perTrainingWorkerHour: 2000000 } };
  expect((await fetch(`${server.url}/api/v1/plans`, { method: 'POST', headers, body: JSON.stringify(plan) })).status).toBe(201);
  const me = (await (await fetch(`${server.url}/api/v1/me`, { headers })).json()) as { tenant: { id: string } };
  expect((await fetch(`${server.url}/api/v1/tenants/${me.tenant.id}/plan`, { method: 'PUT', headers, body: JSON.stringify({ plan: 'starter' }) })).status).toBe(200);
  page = browser.pages()[0] ?? (await browser.newPage());
  // A CSP violation (an inline style or script) or an uncaught error shows up here.
  page.on('console', (message) => {
    if (message.type() === 'error') browserErrors.push(message.text());
  });
  page.on('pageerror', (error) => browserErrors.push(error.message));
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await rm(dataDir, { recursive: true, force: true });
  await rm(profileDir, { recursive: true, force: true });
});

describe('web console in Chromium', () => {
  it('serves / as a redirect and /console with its strict CSP and immutable hashed assets', async () => {
    const redirect = await fetch(`${server.url}/`, { redirect: 'manual' });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toBe('/console/');
    const index = await fetch(`${server.url}/console/jobs/anything`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(index.headers.get('content-security-policy')).toBe(consoleContentSecurityPolicy);
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const html = await index.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/\sstyle=/);
    const script = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const asset = await fetch(server.url + script);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect((await fetch(`${server.url}/console/assets/missing.js`)).status).toBe(404);
  });

  it('refuses a wrong key, then logs in with the admin key kept in sessionStorage only', async () => {
    await page.goto(`${server.url}/`);
    await page.locator('#api-key').fill('aiaas_wrong_key_0000000000000000');
    await page.locator('button[type=submit]').click();
    await page.locator('#login-error').waitFor();
    expect(await page.locator('#login-error').textContent()).toMatch(/key/i);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await screenshot('login');

    await page.locator('#api-key').fill(adminKey);
    await page.locator('button[type=submit]').click();
    await page.locator('nav#nav').waitFor();
    await page.waitForURL((url) => url.pathname === '/console/models');
    expect(page.url()).not.toContain(adminKey);
    expect(await page.evaluate(() => sessionStorage.getItem('aiaas.apiKey'))).toBe(adminKey);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    expect(await browser.cookies()).toEqual([]);
    expect(await page.locator('.identity .role').textContent()).toBe('admin');
  });

  it('uploads a dataset with the progress form and shows its schema and row count', async () => {
    const { train } = loadMnistPackage({ train: 2000, test: 10 });
    const files = idx(train);
    await goTo('/datasets');
    await page.locator('#dataset-file').setInputFiles({ name: 'train-images.idx3-ubyte', mimeType: 'application/octet-stream', buffer: files.images });
    await page.locator('#dataset-labels').setInputFiles({ name: 'train-labels.idx1-ubyte', mimeType: 'application/octet-stream', buffer: files.labels });
    await page.locator('#dataset-name').fill('digits-train');
    await page.locator('#upload-form button[type=submit]').click();
    await page.locator('#upload-result').waitFor();
    expect(await page.locator('#upload-result').textContent()).toBe('Uploaded digits-train: 2,000 rows.');
    const row = page.locator('#datasets-table tr[data-dataset="digits-train"]');
    await row.waitFor();
    expect(await row.locator('td[data-rows]').getAttribute('data-rows')).toBe('2000');
    expect(await row.locator('td').nth(0).textContent()).toBe('idx');
    expect(await row.locator('td').nth(3).textContent()).toBe('[28 × 28]');
    expect(await row.locator('td').nth(4).textContent()).toBe('scalar10 classes');
    await screenshot('datasets');
  });

  it('validates the spec as it is typed, starts a job and draws its curves as epochs finish', async () => {
    await goTo('/jobs');
    await page.locator('a[href="/console/jobs/new"]').first().click();
    await page.locator('#job-spec').waitFor();
    // A syntax error is reported with its line and column, and blocks submission.
    await page.locator('#job-spec').fill('{\n  "input": { "shape": [28, 28] },\n  "layers": [ { "type": "dense" "units": 10 } ]\n}');
    expect(await page.locator('#spec-status').textContent()).toMatch(/^Line 3, column \d+:/);
    expect(await page.locator('#job-submit').isDisabled()).toBe(true);
    // Structure: an unknown layer type and a missing compile section.
    await page.locator('#job-spec').fill(JSON.stringify({ input: { shape: [28, 28] }, layers: [{ type: 'dense2', units: 10 }] }, null, 2));
    const structural = await page.locator('#spec-status').textContent();
    expect(structural).toContain('layers[0].type: "dense2" is not a layer type');
    expect(structural).toContain('compile: required');
    await page.locator('#job-spec').fill(JSON.stringify(spec, null, 2));
    expect(await page.locator('#spec-status').textContent()).toBe('The spec looks valid.');
    await page.locator('#job-model').fill('digits');
    await page.locator('#job-epochs').fill('3');
    await page.locator('#job-batch').fill('64');
    await screenshot('new-job');
    await page.locator('#job-submit').click();
    await page.waitForURL(/\/console\/jobs\/[^/]+$/);
    // The chart gains its points from the live event stream, epoch by epoch.
    await page.waitForFunction(() => Number(document.querySelector('#loss-chart')?.getAttribute('data-points') ?? 0) >= 1, undefined, { timeout: 110_000 });
    await page.locator('#job-status .status-succeeded').waitFor({ timeout: 110_000 });
    expect(await page.locator('#loss-chart').getAttribute('data-points')).toBe('3');
    expect(await page.locator('#loss-chart circle.dot').count()).toBe(3);
    expect(await page.locator('#accuracy-chart circle.dot').count()).toBe(3);
    expect(await page.locator('#history-table tbody tr').count()).toBe(3);
    expect(await page.locator('#job-result').textContent()).toBe('digits version 1');
    await screenshot('job');
    await goTo('/jobs');
    await page.locator('#jobs-table').waitFor();
    expect(await page.locator('#jobs-table tbody tr').count()).toBe(1);
    await screenshot('jobs');
  });

  it('points an alias at the trained version and moves it', async () => {
    await goTo('/models');
    await page.locator('#models-table a[href="/console/models/digits"]').click();
    await page.locator('#alias-name').waitFor();
    await page.locator('#alias-name').fill('production');
    await page.locator('#alias-version').selectOption('1');
    await page.locator('form[aria-label="Point an alias at a version"] button[type=submit]').click();
    await page.locator('#alias-list li[data-alias="production"]').waitFor();
    expect(await page.locator('#alias-list li[data-alias="production"]').getAttribute('data-version')).toBe('1');
    const aliases = (await (await fetch(`${server.url}/api/v1/models/digits/aliases`, { headers: { authorization: `Bearer ${adminKey}` } })).json()) as { aliases: { name: string; version: number }[] };
    expect(aliases.aliases).toMatchObject([{ name: 'production', version: 1 }]);
    expect(await page.locator('#version-1 table').first().textContent()).toContain('[-1, 28, 28]');
    // The cost card: the graph's parameters (784·64 + 64 + 64·10 + 10 weights, plus the input.scale
    // constant), the price from the tenant's plan.
    await page.locator('#cost-1-parameters').waitFor();
    expect(await page.locator('#cost-1-parameters').textContent()).toBe('50,891');
    expect(await page.locator('#cost-1').textContent()).toContain('0.5 USD (starter');
    // An evaluation report from the version's card: figures, and a confusion matrix that sums to the sample count.
    await page.locator('#version-1 details.evaluations > summary').click();
    await page.locator('#evaluate-dataset-1').selectOption({ label: 'digits-train' });
    await page.locator('form[aria-label="Evaluate version 1"] button[type=submit]').click();
    await page.locator('#version-1 .evaluation[data-status="succeeded"] figure.confusion').waitFor({ timeout: 110_000 });
    const cells = await page.locator('#version-1 figure.confusion rect').evaluateAll((rects) => rects.map((rect) => Number(/: (\d+) \(/.exec(rect.querySelector('title')?.textContent ?? '')?.[1])));
    expect(cells).toHaveLength(100);
    expect(cells.reduce((sum, value) => sum + value, 0)).toBe(2000);
    // A promotion gate the version cannot pass: both figures are shown, and an admin may force the move.
    await page.locator('#alias-name').fill('staging');
    await page.locator('details.gate-editor > summary').click();
    await page.locator('#gate-dataset').selectOption({ label: 'digits-train' });
    await page.locator('#gate-metric').selectOption('accuracy');
    await page.locator('#gate-bound').selectOption('minimum');
    await page.locator('#gate-value').fill('0.9999');
    await page.locator('form[aria-label="Point an alias at a version"] button[type=submit]').click();
    await page.locator('#gate-failure').waitFor({ timeout: 110_000 });
    expect(await page.locator('#gate-candidate').textContent()).toMatch(/^accuracy 0\.\d+$/);
    expect(await page.locator('#gate-failure').textContent()).toContain('≥ 0.9999');
    expect(await page.locator('#alias-list li[data-alias="staging"]').count()).toBe(0);
    await screenshot('gate');
    await page.locator('#gate-force').click();
    await page.locator('#alias-list li[data-alias="staging"]').waitFor();
    expect(await page.locator('#alias-message').textContent()).toContain('The gate was forced.');
    await screenshot('model');
    await goTo('/models');
    await page.locator('#models-table').waitFor();
    await screenshot('models');
  });

  it('draws a digit on the canvas and shows the class probabilities', async () => {
    await goTo('/try');
    await page.locator('#try-model').selectOption('digits');
    await page.locator('#drawing').waitFor();
    const box = (await page.locator('#drawing').boundingBox())!;
    // A "1": one vertical stroke down the middle.
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.15);
    await page.mouse.down();
    for (let step = 1; step <= 10; step++) await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * (0.15 + 0.07 * step));
    await page.mouse.up();
    await page.locator('#prediction').waitFor();
    const probabilities = await page.locator('svg.probabilities g.bar').evaluateAll((bars) => bars.map((bar) => Number(bar.getAttribute('data-probability'))));
    expect(probabilities).toHaveLength(10);
    expect(probabilities.reduce((sum, value) => sum + value, 0)).toBeCloseTo(1, 3);
    expect(await page.locator('#prediction').getAttribute('data-class')).toBe('1');
    // What the model saw: a 28×28 image with ink in the centre columns only.
    const preview = await page.locator('#preview').evaluate((canvas: HTMLCanvasElement) => {
      const data = canvas.getContext('2d')!.getImageData(0, 0, 28, 28).data;
      let centre = 0;
      let edge = 0;
      for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) (x >= 10 && x < 18 ? (centre += data[(y * 28 + x) * 4]!) : (edge += data[(y * 28 + x) * 4]!));
      return { centre, edge };
    });
    expect(preview.centre).toBeGreaterThan(0);
    expect(preview.edge).toBe(0);
    // The explanation's heat map (a PNG from POST …/explain) is shown beside the prediction.
    await page.waitForFunction(() => ((document.querySelector('#heatmap') as HTMLImageElement | null)?.naturalWidth ?? 0) > 0, undefined, { timeout: 60_000 });
    expect(await page.locator('#heatmap').evaluate((image: HTMLImageElement) => [image.naturalWidth % 28, image.naturalWidth === image.naturalHeight])).toEqual([0, true]);
    expect(await page.locator('#heatmap').getAttribute('alt')).toContain('class 1');
    await screenshot('try-it');
  });

  it('creates a key shown once, revokes it, and the revoked key is refused', async () => {
    await goTo('/keys');
    await page.locator('#key-name').fill('web-app');
    await page.locator('#key-role').selectOption('inference');
    await page.locator('#key-form button[type=submit]').click();
    await page.locator('#new-key-secret').waitFor();
    const secret = (await page.locator('#new-key-secret').textContent())!;
    expect(secret).toMatch(/^aiaas_/);
    const row = page.locator('#keys-table tr[data-key="web-app"]');
    await row.waitFor();
    expect(await row.getAttribute('data-state')).toBe('active');
    const before = await fetch(`${server.url}/v2/models/digits`, { headers: { authorization: `Bearer ${secret}` } });
    expect(before.status).toBe(200);
    await screenshot('keys');
    await page.locator('#new-key button.secondary', { hasText: 'I have stored it' }).click();
    expect(await page.locator('#new-key-secret').count()).toBe(0);
    page.once('dialog', (dialog) => void dialog.accept());
    await row.locator('button', { hasText: 'Revoke' }).click();
    await page.locator('#keys-table tr[data-key="web-app"][data-state="revoked"]').waitFor();
    const after = await fetch(`${server.url}/api/v1/me`, { headers: { authorization: `Bearer ${secret}` } });
    expect(after.status).toBe(401);
  });

  it('shows usage per model and day, and the audit log with a verified chain', async () => {
    await goTo('/usage');
    await page.locator('#usage-table').waitFor();
    const digits = page.locator('#usage-table tbody tr', { has: page.locator('th', { hasText: 'digits' }) });
    expect(Number(await digits.locator('td').first().textContent())).toBeGreaterThanOrEqual(1);
    // The invoices under the plan: this month's is a draft. (Its lines start with the first whole
    // minute on the plan, so a short test cannot count on having any.)
    const month = new Date().toISOString().slice(0, 7);
    await page.locator(`#invoices-table tr[data-period="${month}"]`).waitFor();
    expect(await page.locator(`#invoices-table tr[data-period="${month}"] td[data-status]`).getAttribute('data-status')).toBe('draft');
    await screenshot('usage');
    await goTo('/audit');
    await page.locator('#audit-table tbody tr').first().waitFor();
    await page.locator('#verify-chain').click();
    await page.locator('#verify-result').waitFor();
    expect(await page.locator('#verify-result').textContent()).toMatch(/^The chain is intact: [\d,]+ entries/);
    expect(await page.locator('#audit-table').textContent()).toContain('key.revoke');
    await screenshot('audit');
  });

  it('generates a form from the signature of a tabular model and answers with its class names', async () => {
    // Trained through the API: the console's part here is the form and the answer.
    const headers = { authorization: `Bearer ${adminKey}` };
    const upload = await fetch(`${server.url}/api/v1/datasets?name=iris&label=species`, { method: 'POST', headers, body: await readFile(join(root, 'examples/iris/iris.csv')) });
    expect(upload.status).toBe(201);
    const dataset = ((await upload.json()) as { dataset: { id: string } }).dataset;
    const irisSpec = JSON.parse(await readFile(join(root, 'examples/iris/spec.json'), 'utf8')) as unknown;
    const submitted = await fetch(`${server.url}/api/v1/jobs`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'iris', spec: irisSpec, datasetId: dataset.id, epochs: 50, batchSize: 16 }),
    });
    expect(submitted.status).toBe(202);
    const jobId = ((await submitted.json()) as { job: { id: string } }).job.id;
    await page.goto(`${server.url}/console/jobs/${jobId}`);
    await page.locator('#job-status .status-succeeded').waitFor({ timeout: 110_000 });
    await page.locator('nav#nav a[href="/console/try"]').click();
    await page.locator('#try-model').selectOption('iris');
    await page.locator('#tabular-form').waitFor();
    const labels = await page.locator('#tabular-form label').allTextContents();
    expect(labels).toEqual(['sepal_length', 'sepal_width', 'petal_length', 'petal_width']);
    for (const [index, value] of ['5.1', '3.5', '1.4', '0.2'].entries()) await page.locator(`#feature-${index}`).fill(value);
    await page.locator('#tabular-form button[type=submit]').click();
    await page.locator('#prediction, .try-grid .notice.error').first().waitFor();
    expect(await page.locator('.try-grid .notice.error').count(), await page.locator('.try-grid').innerText()).toBe(0);
    expect(await page.locator('#prediction').getAttribute('data-class')).toBe('setosa');
    expect(await page.locator('svg.probabilities g.bar').evaluateAll((bars) => bars.map((bar) => bar.getAttribute('data-class')))).toEqual(['setosa', 'versicolor', 'virginica']);
    await screenshot('try-it-tabular');
  });

  it('streams a chat answer from a language model, the same text the API gives', async () => {
    const headers = { authorization: `Bearer ${adminKey}` };
    expect((await fetch(`${server.url}/api/v1/models`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'tiny-llm' }) })).status).toBe(201);
    const uploaded = await fetch(`${server.url}/api/v1/models/tiny-llm/versions`, { method: 'POST', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: Buffer.from(randomLlamaGguf({ seed: 5 })) });
    expect(uploaded.status).toBe(201);
    await page.goto(`${server.url}/console/try/tiny-llm/1`);
    await page.locator('#chat-draft').waitFor();
    await page.locator('#chat-temperature').fill('0');
    await page.locator('#chat-max-tokens').fill('8');
    await page.locator('#chat-draft').fill('hello');
    await page.keyboard.press('Enter');
    await page.locator('#chat-messages[data-streaming="false"] li.message.assistant').waitFor({ timeout: 110_000 });
    const answer = await page.locator('#chat-messages li.message.assistant').evaluate((item) => item.lastChild?.textContent ?? '');
    // The same request without streaming (greedy decoding) answers the same text.
    const whole = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny-llm@1', temperature: 0, max_tokens: 8, messages: [{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content: 'hello' }] }),
    });
    expect(whole.status).toBe(200);
    const expected = ((await whole.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
    expect(expected.length).toBeGreaterThan(0);
    expect(answer).toBe(expected);
    expect(await page.locator('#chat-messages li.message.user').textContent()).toBe('user: hello');
  });

  it('fits a phone screen behind a Menu button and is reachable by keyboard', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${server.url}/console/models`);
    await page.locator('#models-table').waitFor();
    expect(await page.locator('nav#nav').isVisible()).toBe(false);
    await page.locator('.menu-toggle').click();
    expect(await page.locator('.menu-toggle').getAttribute('aria-expanded')).toBe('true');
    expect(await page.locator('nav#nav a[href="/console/jobs"]').isVisible()).toBe(true);
    // Nothing wider than the screen: tables scroll inside their own box.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await screenshot('phone');
    await page.setViewportSize({ width: 1280, height: 860 });
    // The first Tab reaches the skip link, and Enter on it moves focus to the page.
    await page.goto(`${server.url}/console/models`);
    await page.locator('#models-table').waitFor();
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('main');
  });

  it('sends the user back to the login page when the key stops working, and logged no browser errors', async () => {
    await page.evaluate(() => sessionStorage.setItem('aiaas.apiKey', 'aiaas_revoked_or_wrong_000000000'));
    await page.locator('nav#nav a[href="/console/jobs"]').click();
    await page.locator('#login-error').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('aiaas.apiKey'))).toBeNull();
    // The 401s and the gate's 409 above are the server's answers (the browser logs failed loads); nothing else, no CSP violation.
    expect(browserErrors.filter((message) => !/status of (401|409)/.test(message))).toEqual([]);
  });
});
