// What the Firefox ESR scripts share: the browser with its fake camera
// (puppeteer-core over WebDriver BiDi), logging a step, waiting for the
// page, logging a candidate in, and saying what the pages showed when a
// script fails.
import puppeteer from 'puppeteer-core';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// launch starts headless Firefox ESR ($FIREFOX) with a fresh profile, the
// fake camera and microphone allowed without asking, and ICE on loopback.
export function launch() {
  return puppeteer.launch({
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
}

// step logs what the script does, on stderr (stdout is for the Go test).
export const step = (what) => process.stderr.write(`firefox: ${what}\n`);

// until waits for fn to hold on the page, saying what was awaited if not.
// It polls from here with page.evaluate (WebDriver BiDi's callFunction):
// page.waitForFunction builds its predicate with Function() inside the
// page, which Firefox ESR 140.10 refuses under the pages' CSP.
export async function until(page, fn, what, timeout = 30000, ...args) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      if (await page.evaluate(fn, ...args)) return;
    } catch (e) { // a page between two documents
      last = e;
    }
    if (Date.now() > end) throw new Error(`${what}: not within ${timeout} ms${last ? ` (${last.message})` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// login logs the candidate in and opens the attempt's lobby.
export async function login(page, base, ticket, password) {
  step('log in');
  await page.goto(`${base}/login`);
  await page.type('input[name=username]', ticket);
  await page.type('input[name=password]', password);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  await page.waitForSelector('a[data-attempt]');
  await page.click('a[data-attempt]');
}

// run runs script(browser) and closes the browser; on failure it logs what
// each page showed and rethrows.
export async function run(script) {
  const browser = await launch();
  try {
    await script(browser);
  } catch (e) {
    for (const p of await browser.pages()) {
      const seen = await p.evaluate(() => document.querySelector('main')?.innerText.slice(0, 1500)).catch(() => '');
      step(`page ${p.url()}:\n${seen}`);
    }
    throw e;
  } finally {
    await browser.close();
  }
}
