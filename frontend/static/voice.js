// The exam page's voice activity detection: vad-web's Silero model, run by
// onnxruntime-web's wasm build (both served by examhall, nothing from
// elsewhere), listens to a copy of the PC microphone. Speech that lasts a
// second is a `talking` signal, with the last seconds of sound as its
// evidence (a WAV clip); its end is the end of the speech with a second's
// pause allowed. Shorter sounds (a cough, a word) raise nothing.
import { csrfToken } from './i18n.js';
import { cameraStream } from './camera.js';

const RATE = 16000; // the model's samples a second
const CLIP = 4; // seconds of sound kept as evidence
const MIN_SPEECH_MS = 1000; // speech this long is talking
const PAUSE_MS = 1000; // a pause this long ends it

let vad = null;
let started = false;

// stopVoiceAnalysis ends the detection (the attempt is over).
export function stopVoiceAnalysis() {
  vad?.destroy();
  vad = null;
}

// startVoiceAnalysis listens to the exam's microphone when the server
// serves the model (data-voice="on" on #exam). signal(kind, phase, detail)
// reports to the proctor.
export async function startVoiceAnalysis(attemptId, signal) {
  if (started || document.getElementById('exam').dataset.voice !== 'on') return;
  started = true;
  const state = { ready: false, talking: false, starts: 0, frames: 0, error: '' };
  window.examhallVoice = state; // for tests and support
  const ring = []; // the last CLIP seconds of frames
  let kept = 0;
  let order = Promise.resolve(); // a start is sent before its end
  const then = (f) => { order = order.then(f).catch(() => {}); };
  try {
    await script('/vendor/ort/ort.wasm.min.js');
    await script('/vendor/vad/bundle.min.js');
    const stream = await cameraStream();
    const copy = async () => new MediaStream(stream.getAudioTracks().map((t) => t.clone()));
    vad = await window.vad.MicVAD.new({
      model: 'v5',
      baseAssetPath: '/vendor/vad/',
      onnxWASMBasePath: '/vendor/ort/',
      ortConfig: (ort) => { ort.env.logLevel = 'error'; ort.env.wasm.numThreads = 1; },
      getStream: copy,
      resumeStream: copy,
      pauseStream: async (s) => s.getTracks().forEach((t) => t.stop()),
      minSpeechMs: MIN_SPEECH_MS,
      redemptionMs: PAUSE_MS,
      onFrameProcessed: (probs, frame) => {
        state.frames++;
        state.speech = Math.round(probs.isSpeech * 100) / 100;
        ring.push(frame);
        kept += frame.length;
        while (kept - ring[0].length >= CLIP * RATE) kept -= ring.shift().length;
      },
      onSpeechRealStart: () => {
        state.talking = true;
        state.starts++;
        const clip = wav(ring);
        then(async () => {
          const name = await upload(attemptId, clip);
          signal('talking', 'start', name ? { still: name } : {});
        });
      },
      onSpeechEnd: () => {
        if (!state.talking) return;
        state.talking = false;
        then(() => signal('talking', 'end', {}));
      },
    });
    state.ready = true;
    signal('voice_analysis', 'start', {}); // the server's sound check now only advises
  } catch (e) {
    state.error = String(e?.message || e).slice(0, 200);
  }
}

// script loads a classic script of our own origin.
function script(src) {
  return new Promise((resolve, reject) => {
    const el = document.createElement('script');
    el.src = src;
    el.onload = resolve;
    el.onerror = () => reject(new Error(`cannot load ${src}`));
    document.head.append(el);
  });
}

// wav encodes frames of 16 kHz samples as a 16-bit mono WAV file.
function wav(frames) {
  const n = frames.reduce((s, f) => s + f.length, 0);
  const b = new DataView(new ArrayBuffer(44 + 2 * n));
  const text = (at, s) => [...s].forEach((c, i) => b.setUint8(at + i, c.charCodeAt(0)));
  text(0, 'RIFF');
  b.setUint32(4, 36 + 2 * n, true);
  text(8, 'WAVEfmt ');
  b.setUint32(16, 16, true);
  b.setUint16(20, 1, true); // PCM
  b.setUint16(22, 1, true); // mono
  b.setUint32(24, RATE, true);
  b.setUint32(28, 2 * RATE, true);
  b.setUint16(32, 2, true);
  b.setUint16(34, 16, true);
  text(36, 'data');
  b.setUint32(40, 2 * n, true);
  let at = 44;
  for (const f of frames) {
    for (const v of f) {
      b.setInt16(at, Math.max(-1, Math.min(1, v)) * 0x7fff, true);
      at += 2;
    }
  }
  return new Blob([b.buffer], { type: 'audio/wav' });
}

async function upload(attemptId, blob) {
  try {
    const r = await fetch(`/api/attempts/${attemptId}/stills?kind=talking`, {
      method: 'POST', body: blob, headers: { 'Content-Type': 'audio/wav', 'X-CSRF-Token': csrfToken() },
    });
    return r.ok ? (await r.json()).still : '';
  } catch {
    return '';
  }
}
