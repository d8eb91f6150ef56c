// The candidate's journey before the exam in Firefox ESR, driven over
// WebDriver BiDi by puppeteer-core: log in, device check (fake camera, test
// publish), rules, identity photo, phone pairing (a second page), set-up
// checklist, wait in the lobby; once the Go test has admitted the candidate,
// start the exam and see the first question.
// Usage: node journey.mjs BASE_URL TICKET PASSWORD (prints "ready", then
// "started" once the first question shows; exits non-zero on failure).
import puppeteer from 'puppeteer-core';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, ticket, password] = process.argv.slice(2);
const browser = await puppeteer.launch({
  browser: 'firefox',
  executablePath: process.env.FIREFOX || '/usr/bin/firefox-esr',
  headless: true,
  userDataDir: mkdtempSync(join(tmpdir(), 'examhall-ff-')),
  extraPrefsFirefox: {
    'media.navigator.streams.fake': true,
    'media.navigator.permission.disabled': true,
    'media.peerconnection.ice.loopback': true,
    'media.peerconnection.ice.obfuscate_host_addresses': false,
    'permissions.default.camera': 1,
    'permissions.default.microphone': 1,
  },
});
const step = (what) => process.stderr.write(`firefox: ${what}\n`);
const until = (page, expr, what, timeout = 30000) =>
  page.waitForFunction(expr, { timeout, polling: 200 }).catch((e) => { throw new Error(`${what}: ${e.message}`); });

try {
  const page = await browser.newPage();
  step('log in');
  await page.goto(`${base}/login`);
  await page.type('input[name=username]', ticket);
  await page.type('input[name=password]', password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  await page.waitForSelector('a[data-attempt]');
  await page.click('a[data-attempt]');
  step('device check');
  await page.waitForSelector('#go-check');
  await page.click('#go-check');
  await page.waitForSelector('#check-preview');
  await until(page, () => document.querySelector('#check-verdict')?.dataset.passed !== undefined, 'the device check ends', 45000);
  const verdict = await page.evaluate(() => [...document.querySelectorAll('#checks li')].map((li) => `${li.dataset.check}=${li.className}`).join(' '));
  if (!(await page.evaluate(() => document.querySelector('#check-verdict').dataset.passed === 'true'))) throw new Error(`the device check failed in Firefox: ${verdict}`);
  step(`checked: ${verdict}`);
  await page.click('#back-lobby');
  step('rules');
  await page.waitForSelector('#rules-ok');
  await page.click('#rules-ok');
  await page.click('#rules-accept');
  step('identity');
  await page.waitForSelector('#identity-take');
  await until(page, () => document.querySelector('.step-panel video')?.videoWidth > 0, 'the camera preview plays');
  await page.click('#identity-take');
  await page.waitForSelector('#identity-use:not([hidden])');
  await page.click('#identity-use');
  step('phone');
  await page.waitForSelector('#lobby-pair');
  await page.click('#lobby-pair');
  await page.waitForSelector('#pair-url');
  const link = await page.evaluate(() => document.querySelector('#pair-url').textContent);
  const phone = await browser.newPage();
  await phone.goto(link);
  await page.bringToFront(); // the candidate looks at the PC again
  await page.waitForSelector('#setup-items', { timeout: 60000 });
  await page.click('#pairdlg .confirm-actions button');
  step('set-up');
  await page.evaluate(() => document.querySelectorAll('#setup-items input').forEach((i) => { i.checked = true; }));
  await page.click('#setup-confirm');
  await until(page, () => document.querySelector('#lobby-state')?.dataset.state === 'ready', 'ready in the lobby');
  console.log('ready');
  await until(page, () => document.querySelector('#lobby-state')?.dataset.state === 'admitted' && !document.querySelector('#start').disabled, 'admitted', 60000);
  await page.click('#start');
  await page.waitForSelector('.option', { timeout: 30000 });
  console.log('started');
} catch (e) {
  // Say what the candidate saw, for the test's log.
  for (const p of await browser.pages()) {
    const seen = await p.evaluate(() => document.querySelector('main')?.innerText.slice(0, 1500)).catch(() => '');
    step(`page ${p.url()}:\n${seen}`);
  }
  throw e;
} finally {
  await browser.close();
}
