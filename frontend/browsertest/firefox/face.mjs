// The exam page's face analysis in Firefox ESR: log in, start the exam (the
// session admits on its own), and let the page's analysis (Human in a
// module Web Worker, face-worker.js) judge the fake camera, whose synthetic
// pattern has no face.
// Usage: node face.mjs BASE_URL TICKET PASSWORD. Prints on stdout
// "analysing {json}" once the worker has judged frames, then waits for a
// line on stdin (the Go test checks the server meanwhile) and prints
// "report {json}": frames judged, the page's own face work per step
// ("face" measures), the main thread's long tasks and those the analysis
// caused, and whether the watch saw a long task made on purpose. Exits
// non-zero on failure.
import { createInterface } from 'node:readline';
import { login, run, step, until } from './firefox.mjs';

// Firefox has no Long Tasks API (no 'longtask' in
// PerformanceObserver.supportedEntryTypes), so a heartbeat watches the
// main thread from the page's first script on: a chain of setTimeout(0)
// (4 ms apart once nested) whose every gap over 50 ms is a long task, as
// long as the gap (a few ms longer than the task at the most).
const HEARTBEAT = `
  window.__long = [];
  window.__beats = 0;
  let last = performance.now();
  const beat = () => {
    const now = performance.now();
    if (now - last > 50) window.__long.push({ start: last, ms: now - last });
    last = now;
    window.__beats++;
    setTimeout(beat, 0);
  };
  setTimeout(beat, 0);`;

const [base, ticket, password] = process.argv.slice(2);
const stdin = createInterface({ input: process.stdin });
const told = new Promise((resolve) => { stdin.once('line', resolve); stdin.once('close', resolve); });

await run(async (browser) => {
  const page = await browser.newPage();
  await page.evaluateOnNewDocument(HEARTBEAT);
  await login(page, base, ticket, password);
  step('start the exam');
  await until(page, () => document.querySelector('#start')?.disabled === false, 'the start button is enabled');
  await page.click('#start');
  await page.waitForSelector('.option', { timeout: 30000 });
  step('face analysis');
  await until(page, () => window.examhallFace?.ready === true || !!window.examhallFace?.error, 'the face analysis loads', 90000);
  const error = await page.evaluate(() => window.examhallFace.error || '');
  if (error) throw new Error(`face analysis: ${error}`);
  const from = await page.evaluate(() => ({ at: performance.now(), beats: window.__beats }));
  await until(page, () => window.examhallFace.frames >= 4, 'frames analysed', 30000);
  const f = await page.evaluate(() => ({ backend: window.examhallFace.backend, frames: window.examhallFace.frames, log: window.examhallFace.log }));
  console.log(`analysing ${JSON.stringify(f)}`);
  await told;
  stdin.close();
  step('report');
  const report = await page.evaluate((from) => {
    const face = performance.getEntriesByName('face', 'measure').filter((m) => m.startTime >= from.at);
    const long = window.__long.filter((e) => e.start >= from.at).map((e) => ({ ...e,
      face: face.filter((m) => m.startTime >= e.start - 1 && m.startTime + m.duration <= e.start + e.ms + 1).reduce((s, m) => s + m.duration, 0) }));
    const ms = face.map((m) => m.duration).sort((a, b) => a - b);
    const worker = window.examhallFace.log.filter((r) => r.at >= from.at).map((r) => r.ms).sort((a, b) => a - b);
    return {
      seconds: (performance.now() - from.at) / 1000,
      frames: window.examhallFace.frames,
      error: window.examhallFace.error || '',
      last: window.examhallFace.last,
      beats: window.__beats - from.beats,
      measures: ms.length,
      median: ms[ms.length >> 1] || 0,
      max: ms[ms.length - 1] || 0,
      worker: [worker[worker.length >> 1] || 0, worker[worker.length - 1] || 0],
      long,
      blamed: long.filter((e) => e.face >= e.ms / 2),
    };
  }, from);
  // The watch's own check: a task of 120 ms made on purpose is seen.
  const before = await page.evaluate(() => window.__long.length);
  await page.evaluate(() => { const t = performance.now(); while (performance.now() - t < 120); });
  await new Promise((resolve) => setTimeout(resolve, 300));
  report.control = await page.evaluate((n) => window.__long.slice(n).some((e) => e.ms >= 120), before);
  console.log(`report ${JSON.stringify(report)}`);
});
