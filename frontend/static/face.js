// The exam page's side of the face analysis: it hands a frame of the PC
// camera to face-worker.js about twice a second (never while the worker is
// busy, so frames do not pile up), turns the worker's judgements into
// signals for the proctor with a little hysteresis, and attaches the frame
// as evidence to each start. The heavy work never runs on this thread.
import { csrfToken } from './i18n.js';

const EVERY = 500; // ms between frames at most (about 2 a second)
const ON = 2; // analyses in a row that start a condition
const OFF = 2; // analyses in a row that end it

let started = false;
let stop = () => {};

// stopFaceAnalysis ends the analysis (the attempt is over).
export function stopFaceAnalysis() { stop(); }

// Judged conditions: kind → { on, run, detail }.
const conds = new Map();

// startFaceAnalysis runs the analysis on the camera shown in video, when the
// server serves the models (data-face="on" on #exam). signal(kind, phase,
// detail) reports to the proctor.
export function startFaceAnalysis(video, attemptId, signal) {
  if (started || document.getElementById('exam').dataset.face !== 'on' || !window.Worker) return;
  started = true;
  const worker = new Worker('/static/face-worker.js', { type: 'module' });
  const state = { busy: false, ready: false, stillWaiter: null, last: null, frames: 0, log: [] };
  window.examhallFace = state; // for tests and support: the last judgement

  // timed measures the page's own share of the analysis (grabbing a frame,
  // judging a result) as "face", so a long task can be traced to it: the
  // part of a handler that runs at once, up to its first await; what runs
  // after an await (sending a signal) is small.
  const timed = (f) => (...args) => {
    const t0 = performance.now();
    const r = f(...args);
    performance.measure('face', { start: t0, end: performance.now() });
    return r;
  };
  const post = timed(async () => {
    if (state.busy || video.readyState < 2 || !video.videoWidth) return;
    state.busy = true;
    try {
      const bitmap = await createImageBitmap(video);
      worker.postMessage({ type: 'frame', bitmap }, [bitmap]);
    } catch {
      state.busy = false;
    }
  });
  const still = () => new Promise((resolve) => { state.stillWaiter = resolve; worker.postMessage({ type: 'still' }); });
  const upload = async (kind, blob) => {
    try {
      const r = await fetch(`/api/attempts/${attemptId}/stills?kind=${kind}`, {
        method: 'POST', body: blob, headers: { 'Content-Type': 'image/jpeg', 'X-CSRF-Token': csrfToken() },
      });
      return r.ok ? (await r.json()).still : '';
    } catch {
      return '';
    }
  };

  // judge moves each condition with hysteresis and reports changes.
  const judge = async (r) => {
    const now = {
      face_absent: r.faces === 0 ? {} : null,
      faces_multiple: r.faces > 1 ? { faces: r.faces } : null,
      face_occluded: r.faces === 1 && r.occluded ? { part: r.part } : null,
      head_turned: r.faces === 1 && r.turned ? { angle: r.turn } : null,
    };
    for (const [kind, detail] of Object.entries(now)) {
      const c = conds.get(kind) || { on: false, run: 0 };
      conds.set(kind, c);
      const flips = !!detail !== c.on;
      c.run = flips ? c.run + 1 : 0;
      if (!flips || c.run < (c.on ? OFF : ON)) continue;
      c.on = !c.on;
      c.run = 0;
      if (c.on) {
        const name = await upload(kind, await still());
        signal(kind, 'start', { ...detail, ...(name ? { still: name } : {}) });
      } else {
        signal(kind, 'end', {});
      }
    }
  };

  worker.onmessage = timed(async (e) => {
    const m = e.data;
    switch (m.type) {
      case 'ready':
        state.ready = true;
        state.backend = m.backend;
        signal('face_analysis', 'start', { backend: m.backend, version: m.version });
        await enrol(worker, attemptId);
        {
          const timer = setInterval(post, EVERY);
          stop = () => { clearInterval(timer); worker.terminate(); };
        }
        break;
      case 'enrolled': // the device check's frame is the first baseline
        state.enrolled = m.ok;
        break;
      case 'result':
        state.last = m.result;
        state.frames++;
        state.log.push({ at: Math.round(performance.now()), ...m.result });
        if (state.log.length > 120) state.log.shift();
        await judge(m.result);
        state.busy = false;
        break;
      case 'still':
        state.stillWaiter?.(m.blob);
        state.stillWaiter = null;
        break;
      case 'error':
        state.error = m.message;
        state.busy = false;
        if (!state.ready) signal('face_analysis', 'end', { error: m.message.slice(0, 200) });
        break;
    }
  });
  // The worker's script itself failing (e.g. the models' files gone).
  worker.onerror = (e) => {
    state.error = e.message || 'worker failed';
    if (!state.ready) signal('face_analysis', 'end', { error: state.error.slice(0, 200) });
  };
  stop = () => worker.terminate();
  worker.postMessage({ type: 'init' });
}

// enrol gives the worker the device check's frame, if there is one, as the
// first baseline of the candidate's face.
async function enrol(worker, attemptId) {
  try {
    const r = await fetch(`/api/attempts/${attemptId}/enrol`);
    if (!r.ok) return;
    const bitmap = await createImageBitmap(await r.blob());
    worker.postMessage({ type: 'enrol', bitmap }, [bitmap]);
  } catch {
    // no enrolment frame: the first clean frames are the baseline
  }
}
