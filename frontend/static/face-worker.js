// The exam page's face analysis, off the page's main thread: Human
// (@vladmandic/human) with the tfjs wasm backend, the face detector and
// mesh and the hand detector only, all served by examhall. Each frame the
// page posts is judged: how many faces, the head's angles against the
// candidate's own frontal baseline, a hand over the lower face, and how much
// the nose, mouth and chin regions differ from the candidate's own baseline
// (the device check's enrolment frame, then a slowly rolling average of
// clean frames), compared as normalised grey patches, with the eyes'
// contrast as the measure of the light, so a change of lighting is not an
// occlusion.
//
// The order of judgement: how many faces (a detector box where the
// candidate's own face was counts, even without a mesh or with a fallen
// score: a covered face is still a face); then a turned head; then, only
// while the pose is near the baseline's, a covered face. Absent means no
// box at all, or none that counts.
import { Human } from '/vendor/human/human.esm.js';

const config = {
  backend: 'wasm',
  modelBasePath: '/vendor/human/models/',
  wasmPath: '/vendor/tfjs-wasm/',
  wasmPlatformFetch: false,
  debug: false,
  async: true,
  warmup: 'none',
  cacheSensitivity: 0, // every frame is analysed afresh: stills must match
  filter: { enabled: false },
  face: {
    enabled: true,
    detector: { rotation: false, maxDetected: 4, minConfidence: 0.2, skipFrames: 0, skipTime: 0, return: false },
    mesh: { enabled: true, keepInvalid: true }, // a covered or turned face is still a face
    iris: { enabled: false }, emotion: { enabled: false }, description: { enabled: false },
    antispoof: { enabled: false }, liveness: { enabled: false }, attention: { enabled: false }, gear: { enabled: false },
  },
  hand: { enabled: true, maxDetected: 2, minConfidence: 0.5, skipFrames: 0, skipTime: 0, landmarks: false },
  body: { enabled: false }, object: { enabled: false }, gesture: { enabled: false }, segmentation: { enabled: false },
};

// Thresholds, found on the fixtures (media/vision/testdata) and TESTING.md.
const MIN_BOX = 0.5; // detector score a face needs (ghost boxes score less)
const NO_MESH_BOX = 0.75; // the same for a face whose mesh failed
const TURNED = 30; // degrees of yaw or pitch away from the baseline (the rules' 30)
const POSE_NEAR = 15; // degrees within which regions are compared with the baseline
const PLACE = 0.5; // a box within this many face widths of the face's place is there
const OCCLUDED = 0.5; // region difference (0 same .. 1 unlike)
const SCORE_DROP = 0.15; // fall of the detector score from the baseline
const PATCH = 12; // grey patch side, pixels

let human = null;
let canvas = null;
let ctx = null;
const small = new OffscreenCanvas(PATCH, PATCH);
const sctx = small.getContext('2d', { willReadFrequently: true });
let base = null; // { regions: {nose, mouth, chin, eyes}, score, yaw, pitch, side, place, n }
let enrolled = false;

const deg = (r) => (r * 180) / Math.PI;
const dist = (a, b) => Math.hypot(a[0] - b[0], a[1] - b[1]);

// patch is a region of the frame as a zero-mean grey vector and its spread.
function patch(cx, cy, w, hgt) {
  sctx.drawImage(canvas, cx - w / 2, cy - hgt / 2, w, hgt, 0, 0, PATCH, PATCH);
  const px = sctx.getImageData(0, 0, PATCH, PATCH).data;
  const v = new Float32Array(PATCH * PATCH);
  let mean = 0;
  for (let i = 0; i < v.length; i++) {
    v[i] = 0.299 * px[4 * i] + 0.587 * px[4 * i + 1] + 0.114 * px[4 * i + 2];
    mean += v[i];
  }
  mean /= v.length;
  let sd = 0;
  for (let i = 0; i < v.length; i++) { v[i] -= mean; sd += v[i] * v[i]; }
  sd = Math.sqrt(sd / v.length);
  return { v, sd };
}

// regions cuts the nose, mouth and chin out of a face by its mesh (a mesh
// over a covered face is invented, but still where the face is), and the
// eyes, whose contrast tells how the light changed.
function regions(f) {
  const m = f.mesh;
  const width = dist(m[234], m[454]) || f.box[2];
  const mouth = [(m[13][0] + m[14][0]) / 2, (m[13][1] + m[14][1]) / 2];
  return {
    nose: patch(m[4][0], m[4][1], 0.3 * width, 0.25 * width),
    mouth: patch(mouth[0], mouth[1], 0.5 * width, 0.25 * width),
    chin: patch(m[152][0], m[152][1] - 0.1 * width, 0.4 * width, 0.2 * width),
    eyes: patch(m[168][0], m[168][1], 0.7 * width, 0.2 * width),
  };
}
const PARTS = ['nose', 'mouth', 'chin'];

// unlike says how different a region is from its baseline: low correlation
// of the normalised patches, or the texture gone flat (a hand or a cloth
// over it) beyond what the light did to the whole face (contrast: the
// eyes' spread now over their baseline).
function unlike(p, b, contrast) {
  let dot = 0;
  for (let i = 0; i < p.v.length; i++) dot += p.v[i] * b.v[i];
  const corr = p.sd && b.sd ? dot / (p.v.length * p.sd * b.sd) : 0;
  const flat = b.sd && contrast ? Math.max(0, 1 - p.sd / b.sd / contrast) : 0;
  return Math.max(0, Math.min(1, Math.max(1 - corr, flat)));
}

function blend(b, p, k) {
  for (let i = 0; i < b.v.length; i++) b.v[i] = (1 - k) * b.v[i] + k * p.v[i];
  b.sd = (1 - k) * b.sd + k * p.sd;
}

// learn folds a clean frame into the baseline: the first frames set it,
// later ones move it slowly (lighting drifts; a cover does not get learnt,
// since only clean frames count).
function learn(r, f, ang) {
  const place = centre(f.box);
  if (!base) {
    base = { regions: r, score: f.boxScore, yaw: ang.yaw, pitch: ang.pitch, side: ang.side, place, n: 1 };
    return;
  }
  const k = base.n < 5 ? 1 / (base.n + 1) : 0.05;
  // The face's place follows a candidate who shifts in the seat faster
  // than its looks change.
  base.place = base.place.map((v, i) => 0.8 * v + 0.2 * place[i]);
  for (const name of Object.keys(r)) blend(base.regions[name], r[name], k);
  base.score = (1 - k) * base.score + k * f.boxScore;
  base.yaw = (1 - k) * base.yaw + k * ang.yaw;
  base.pitch = (1 - k) * base.pitch + k * ang.pitch;
  base.side = (1 - k) * base.side + k * ang.side;
  base.n++;
}

// sideYaw estimates the yaw from where the nose tip sits between the
// cheeks' edges: a turned head brings it towards one of them. Human's own
// yaw comes from the mesh's depth, which moves less on a turned head.
function sideYaw(m) {
  const mid = (m[234][0] + m[454][0]) / 2;
  const half = Math.abs(m[454][0] - m[234][0]) / 2 || 1;
  return deg(Math.asin(Math.max(-1, Math.min(1, (m[4][0] - mid) / half))));
}

// keySide estimates the yaw the same way from the detector's six
// keypoints (eyes, nose, mouth, ears), all a face without a mesh has.
function keySide(k) {
  const mid = (k[4][0] + k[5][0]) / 2;
  const half = Math.abs(k[5][0] - k[4][0]) / 2 || 1;
  return deg(Math.asin(Math.max(-1, Math.min(1, (k[2][0] - mid) / half))));
}

// centre is a box's centre and width.
const centre = (b) => [b[0] + b[2] / 2, b[1] + b[3] / 2, b[2]];

// atPlace says whether a box is where the candidate's face was, at about
// its size: a covered face stays there; a ghost box rarely is there.
function atPlace(b) {
  if (!base?.place) return false;
  const [x, y, w] = centre(b);
  const [bx, by, bw] = base.place;
  return Math.hypot(x - bx, y - by) < PLACE * bw && w > bw / 2 && w < bw * 2;
}

function overlapsLowerFace(hb, fb) {
  const top = fb[1] + fb[3] * 0.45;
  const ix = Math.min(hb[0] + hb[2], fb[0] + fb[2]) - Math.max(hb[0], fb[0]);
  const iy = Math.min(hb[1] + hb[3], fb[1] + fb[3]) - Math.max(hb[1], top);
  return ix > 0 && iy > 0 && ix * iy > 0.1 * fb[2] * (fb[1] + fb[3] - top);
}

async function analyse(bitmap, learnOnly) {
  if (!canvas || canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
    canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    ctx = canvas.getContext('2d', { willReadFrequently: true });
  }
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const t0 = performance.now();
  const res = await human.detect(canvas);
  // A face counts on a confident detector box (more confident without a
  // mesh: a profile or a heavy cover, kept by keepInvalid), or on a box
  // where the candidate's own face was: a covered face loses its mesh and
  // part of its score but not its place.
  const meshed = (f) => f.mesh?.length >= 468;
  const faces = res.face.filter((f) => f.boxScore >= (meshed(f) ? MIN_BOX : NO_MESH_BOX) || (f.boxScore >= MIN_BOX && candidateUnder(f)));
  const out = {
    faces: faces.length,
    scores: res.face.map((f) => [f.boxScore, f.faceScore].map((v) => Math.round(v * 100) / 100).concat(meshed(f) ? [] : ['no mesh'])),
    ms: Math.round(performance.now() - t0),
  };
  if (faces.length !== 1) return out;
  const f = faces[0];
  // (the hand detector also has a "face" class: not a hand)
  const hand = res.hand.some((hd) => hd.label !== 'face' && overlapsLowerFace(hd.box, f.box));
  if (!meshed(f)) return judgeUnmeshed(f, hand, out);
  const a = f.rotation?.angle || { yaw: 0, pitch: 0, roll: 0 };
  const ang = { yaw: deg(a.yaw), pitch: deg(a.pitch), roll: deg(a.roll), side: sideYaw(f.mesh) };
  Object.assign(out, { yaw: Math.round(ang.yaw), pitch: Math.round(ang.pitch), roll: Math.round(ang.roll), side: Math.round(ang.side) });
  const r = regions(f);
  if (learnOnly) {
    learn(r, f, ang);
    return out;
  }
  out.hand = hand;
  if (!base) {
    if (!hand && Math.abs(ang.yaw) < 20 && Math.abs(ang.side) < 20) learn(r, f, ang);
    return out;
  }
  // A turned head first: the largest change against the candidate's own
  // frontal baseline.
  const turns = [ang.yaw - base.yaw, ang.side - base.side, ang.pitch - base.pitch];
  const turn = turns.reduce((x, y) => (Math.abs(y) > Math.abs(x) ? y : x));
  out.turn = Math.round(turn);
  out.turned = Math.abs(turn) > TURNED;
  if (out.turned) return out;
  // Then a cover: a hand over the lower face whatever the pose; the
  // regions and the score only while the pose is near the baseline's,
  // since a head turned part way changes them too.
  out.part = 'hand';
  out.occluded = hand;
  if (!hand && Math.abs(turn) <= POSE_NEAR) {
    const contrast = base.regions.eyes.sd ? r.eyes.sd / base.regions.eyes.sd : 1;
    out.contrast = Math.round(contrast * 100) / 100;
    const diff = {};
    let part = 'mouth';
    for (const name of PARTS) {
      diff[name] = Math.round(unlike(r[name], base.regions[name], contrast) * 100) / 100;
      if (diff[name] > diff[part]) part = name;
    }
    out.diff = diff;
    out.drop = Math.round((base.score - f.boxScore) * 100) / 100;
    // The chin region changes most with pose and the collar, so a change
    // there alone needs the detector's score to fall too.
    out.occluded = diff.mouth > OCCLUDED || diff.nose > OCCLUDED
      || (diff.chin > OCCLUDED && out.drop > SCORE_DROP / 2) || out.drop > SCORE_DROP;
    out.part = part;
  }
  if (!out.occluded && Math.abs(turn) <= POSE_NEAR) learn(r, f, ang);
  return out;
}

// candidateUnder says whether a face the mesh model gave up on is the
// candidate's, covered: a box where their face was whose eyes, by the
// detector's keypoints, still look like the baseline's (a cover leaves the
// eyes; a box on an empty chair has none of them).
function candidateUnder(f) {
  if (!atPlace(f.box) || f.mesh?.length !== 6) return false;
  const k = f.mesh;
  const width = Math.abs(k[5][0] - k[4][0]) || f.box[2];
  const eyes = patch((k[0][0] + k[1][0]) / 2, (k[0][1] + k[1][1]) / 2, 0.7 * width, 0.2 * width);
  f.eyesUnlike = unlike(eyes, base.regions.eyes, 0); // the shape only, not the light
  return f.eyesUnlike <= OCCLUDED;
}

// judgeUnmeshed judges a face the mesh model gave up on, from the
// detector's keypoints: turned when they say so; covered when it is the
// candidate's (candidateUnder) and the pose is near the baseline's (a hand
// box names the part); otherwise no judgement (a confident face elsewhere
// without a mesh is still counted as a face).
function judgeUnmeshed(f, hand, out) {
  out.mesh = false;
  if (!base || f.mesh?.length !== 6) return out;
  const turn = keySide(f.mesh) - base.side;
  out.turn = Math.round(turn);
  out.turned = Math.abs(turn) > TURNED;
  const under = candidateUnder(f);
  out.eyes = Math.round(f.eyesUnlike * 100) / 100;
  if (!out.turned && Math.abs(turn) <= POSE_NEAR && under) {
    out.occluded = true;
    out.part = hand ? 'hand' : 'face';
    out.hand = hand;
  }
  return out;
}

onmessage = async (e) => {
  const m = e.data;
  try {
    switch (m.type) {
      case 'init':
        human = new Human(config);
        await human.load();
        postMessage({ type: 'ready', backend: human.tf.getBackend(), version: human.version });
        break;
      case 'enrol': // the device check's frame, before any other
        if (!enrolled && !base) postMessage({ type: 'enrolled', result: await analyse(m.bitmap, true), ok: !!base });
        enrolled = true;
        break;
      case 'frame':
        postMessage({ type: 'result', result: await analyse(m.bitmap, false) });
        break;
      case 'still': // the frame last analysed, as evidence
        postMessage({ type: 'still', blob: await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.8 }) });
        break;
    }
  } catch (err) {
    postMessage({ type: 'error', message: String(err && err.message || err) });
  }
};
