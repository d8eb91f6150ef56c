// The candidate's journey before the exam in Firefox ESR, driven over
// WebDriver BiDi by puppeteer-core: log in, device check (fake camera, test
// publish), rules, identity photo, phone pairing (a second page), set-up
// checklist, wait in the lobby; once the Go test has admitted the candidate,
// start the exam and see the first question.
// Usage: node journey.mjs BASE_URL TICKET PASSWORD (prints "ready", then
// "started" once the first question shows; exits non-zero on failure).
import { login, run, step, until } from './firefox.mjs';

const [base, ticket, password] = process.argv.slice(2);
await run(async (browser) => {
  const page = await browser.newPage();
  await login(page, base, ticket, password);
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
});
