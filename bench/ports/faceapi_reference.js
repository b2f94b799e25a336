// Reference runtime for the face-api.js ports in shield/adversarial/models/faceapi_*.py.
//
// Runs @vladmandic/face-api 1.7.15 on @tensorflow/tfjs 4.22.0 with the pure-JS CPU
// backend (no tfjs-node, no wasm binary, no canvas). The package's node-wasm build is
// used with its wasm backend module replaced by an empty stub, since only the CPU
// backend is ever selected.
//
// Usage: node bench/ports/faceapi_reference.js < jobs.json > results.json
//   jobs.json: [{"image": "/path/rgb.npy", "op": OP, "box": [x, y, w, h]?}, ...]
//   the image is a uint8 (H, W, 3) RGB .npy file; OP is one of
//     descriptor  faceRecognitionNet.computeFaceDescriptor on the box crop (whole image
//                 when no box) -> {"descriptor": [128]}
//     landmarks   faceLandmark68Net on the box crop -> {"raw": [136] network output in
//                 [0,1] of the padded crop, "positions": [[x, y] x 68] image pixels}
//     detect      ssdMobilenetv1 -> {"boxes": [[ymin, xmin, ymax, xmax] x 5118] in the
//                 padded 512 square, "scores": [5118], "detections": [{"box": [x0, y0,
//                 x1, y1], "score"}]} with locateFaces' defaults (minConfidence 0.5,
//                 maxResults 100)
//     pipeline    detectAllFaces().withFaceLandmarks().withFaceDescriptors() -> the raw SSD
//                 "boxes" and "scores" as detect, and "faces": [{"box", "score", "crop":
//                 [w, h] of the landmark crop, "landmarks" [[x, y] x 68] image pixels,
//                 "aligned": [x0, y0, x1, y1] the box described, "descriptor": [128]}]
// Environment: SHIELD_NODE_MODULES names another node_modules folder.
'use strict';

const fs = require('fs');
const path = require('path');
const Module = require('module');

const NODE_MODULES = process.env.SHIELD_NODE_MODULES || path.resolve(__dirname, '..', '..', 'node_modules');
const FACEAPI = path.join(NODE_MODULES, '@vladmandic', 'face-api');

const originalLoad = Module._load;
Module._load = function load(request, ...rest) {
  if (request === '@tensorflow/tfjs-backend-wasm') return { setWasmPaths: () => {}, version_wasm: 'unused' };
  if (request === '@tensorflow/tfjs') return originalLoad.call(this, path.join(NODE_MODULES, '@tensorflow', 'tfjs'), ...rest);
  return originalLoad.call(this, request, ...rest);
};
const faceapi = require(path.join(FACEAPI, 'dist', 'face-api.node-wasm.js'));

const { tf } = faceapi;
// tfjs greets on console.log; keep stdout for the JSON answer alone.
console.log = (...args) => process.stderr.write(`${args.join(' ')}\n`);

function readNpyRgb(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  if (!/'descr': '\|u1'/.test(header) || /'fortran_order': True/.test(header)) throw new Error(`${file}: expected C-order uint8`);
  const shape = header.match(/'shape': \((\d+), (\d+), 3\)/);
  if (!shape) throw new Error(`${file}: expected shape (H, W, 3)`);
  const [h, w] = [Number(shape[1]), Number(shape[2])];
  return tf.tensor3d(new Int32Array(buf.subarray(start, start + h * w * 3)), [h, w, 3], 'int32');
}

async function crop(image, box) {
  if (!box) return image;
  const [x, y, width, height] = box;
  const faces = await faceapi.extractFaceTensors(image, [new faceapi.Rect(x, y, width, height)]);
  return faces[0];
}

function detectionJson(d) {
  return { box: [d.box.left, d.box.top, d.box.right, d.box.bottom], score: d.score };
}

// The SSD's raw outputs of the next forward pass, read from inside locateFaces so that
// the network runs once per image (it takes tens of seconds on the tfjs CPU backend).
function captureRaw() {
  const net = faceapi.nets.ssdMobilenetv1;
  const original = net.forwardInput;
  const raw = {};
  net.forwardInput = function forwardInput(input) {
    const out = original.call(this, input);
    if (raw.boxes === undefined) {
      raw.boxes = out.boxes[0].arraySync();
      raw.scores = Array.from(out.scores[0].dataSync());
    }
    return out;
  };
  return {
    release() {
      net.forwardInput = original;
      return raw;
    },
  };
}

async function run(job) {
  const image = readNpyRgb(job.image);
  try {
    if (job.op === 'descriptor') {
      const face = await crop(image, job.box);
      const descriptor = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(face);
      return { descriptor: Array.from(descriptor) };
    }
    if (job.op === 'landmarks') {
      const face = await crop(image, job.box);
      const net = faceapi.nets.faceLandmark68Net;
      const input = await faceapi.toNetInput(face);
      const raw = tf.tidy(() => net.runNet(input));
      const rawValues = Array.from(await raw.data());
      raw.dispose();
      let marks = await net.detectLandmarks(face);
      // as the detectAllFaces().withFaceLandmarks() task: shift by the unclipped box corner
      if (job.box) marks = marks.shiftBy(job.box[0], job.box[1]);
      return { raw: rawValues, positions: marks.positions.map((p) => [p.x, p.y]) };
    }
    if (job.op === 'detect') {
      const raw = captureRaw();
      const found = await faceapi.nets.ssdMobilenetv1.locateFaces(image, new faceapi.SsdMobilenetv1Options());
      return { ...raw.release(), detections: found.map(detectionJson) };
    }
    if (job.op === 'pipeline') {
      const raw = captureRaw();
      const faces = await faceapi.detectAllFaces(image, new faceapi.SsdMobilenetv1Options()).withFaceLandmarks().withFaceDescriptors();
      return {
        ...raw.release(),
        faces: faces.map((f) => {
          const aligned = f.landmarks.align(null, { useDlibAlignment: true });
          return {
            ...detectionJson(f.detection),
            crop: [f.unshiftedLandmarks.imageWidth, f.unshiftedLandmarks.imageHeight],
            landmarks: f.landmarks.positions.map((p) => [p.x, p.y]),
            aligned: [aligned.left, aligned.top, aligned.right, aligned.bottom],
            descriptor: Array.from(f.descriptor),
          };
        }),
      };
    }
    throw new Error(`unknown op ${job.op}`);
  } finally {
    image.dispose();
  }
}

async function main() {
  await tf.setBackend('cpu');
  await tf.ready();
  const modelDir = path.join(FACEAPI, 'model');
  const jobs = JSON.parse(fs.readFileSync(0, 'utf8'));
  const ops = new Set(jobs.map((j) => j.op));
  const all = ops.has('pipeline');
  if (all || ops.has('descriptor')) await faceapi.nets.faceRecognitionNet.loadFromDisk(modelDir);
  if (all || ops.has('landmarks')) await faceapi.nets.faceLandmark68Net.loadFromDisk(modelDir);
  if (all || ops.has('detect')) await faceapi.nets.ssdMobilenetv1.loadFromDisk(modelDir);
  const results = [];
  for (const job of jobs) {
    const t0 = process.hrtime.bigint();
    const out = await run(job);
    out.ms = Number(process.hrtime.bigint() - t0) / 1e6;
    results.push(out);
  }
  process.stdout.write(JSON.stringify({ tfjs: tf.version_core, faceapi: faceapi.version, backend: tf.getBackend(), results }));
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
