// The codec worker: the live loop (device-rate blocks from the capture worklet → model rate → one frame at a time
// through encoder and decoder → device rate → the playback worklet) and whole-file decoding, off the page's
// thread and off the audio thread. Messages in: init, start (with the two worklet ports), codebooks, stop,
// decodeAudio, decodeCodes, collect. Messages out: ready, stats, progress, result, error.

import { CodecModel, StreamDecoder, StreamEncoder } from './codec.js';
import { Resampler } from './resampler.js';

const FILE_CHUNK_FRAMES = 50; // frames per graph call for files: same samples as one at a time, less overhead
const MAX_PENDING_FRAMES = 10; // live input waiting to be coded beyond this is dropped (counted as overflows)
const TIMING_WINDOW = 500; // frames the compute-time percentiles are taken over

let model = null;
let config = null;
let live = null;

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Peak and RMS level (dBFS) of the samples seen since the last `take()`: what a meter shows per update. */
class Level {
  constructor() {
    this.take();
  }

  add(samples) {
    for (const x of samples) {
      this.sum += x * x;
      this.peak = Math.max(this.peak, Math.abs(x));
    }
    this.count += samples.length;
  }

  take() {
    const db = (v) => (v > 0 ? 20 * Math.log10(v) : -Infinity);
    const level = { rms: db(Math.sqrt(this.sum / Math.max(1, this.count))), peak: db(this.peak) };
    this.sum = 0;
    this.peak = 0;
    this.count = 0;
    return level;
  }
}

function concat(chunks, Type) {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Type(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

/** One live session: its own encoder and decoder state, resamplers and counters. */
class LiveSession {
  constructor(id, deviceRate, capturePort, playbackPort, codebooks, record) {
    this.id = id; // the page's number for this session, on its error messages
    this.frameSize = config.frame_size;
    this.encoder = new StreamEncoder(model);
    this.decoder = new StreamDecoder(model);
    this.toModel = new Resampler(deviceRate, config.sample_rate);
    this.toDevice = new Resampler(config.sample_rate, deviceRate);
    this.pending = new Float32Array(0);
    this.codebooks = codebooks; // what is sent; the slider's choice is `wantedCodebooks`
    this.playbackPort = playbackPort;
    this.capturePort = capturePort;
    this.busy = false;
    this.frames = 0;
    this.overflows = 0;
    this.times = [];
    this.recent = []; // compute times since the last stats message, for the page's plot
    this.lastStats = 0;
    this.inputLevel = new Level();
    this.outputLevel = new Level();
    this.started = performance.now();
    this.record = record ? { input: [], codes: [], codebooks: [], output: [], computeMs: [], encodeMs: [] } : null;
    capturePort.onmessage = (event) => this.push(event.data);
  }

  push(block) {
    const resampled = this.toModel.process(block);
    const joined = new Float32Array(this.pending.length + resampled.length);
    joined.set(this.pending);
    joined.set(resampled, this.pending.length);
    this.pending = joined;
    const excess = Math.floor(this.pending.length / this.frameSize) - MAX_PENDING_FRAMES;
    if (excess > 0) {
      this.pending = this.pending.slice(excess * this.frameSize);
      this.overflows += excess;
    }
    if (!this.busy) this.pump();
  }

  async pump() {
    this.busy = true;
    try {
      while (this.pending.length >= this.frameSize && !this.stopped) {
        const frame = this.pending.slice(0, this.frameSize);
        this.pending = this.pending.slice(this.frameSize);
        await this.codeFrame(frame);
      }
    } catch (error) {
      // `live`: the page stops its side too (microphone, button), not only shows the message.
      postMessage({ type: 'error', live: this.id, message: `live coding stopped: ${error.message ?? error}` });
      this.stop();
    } finally {
      this.busy = false;
    }
  }

  async codeFrame(frame) {
    const q = this.codebooks;
    const t0 = performance.now();
    const codes = await this.encoder.encode(frame, q);
    const t1 = performance.now();
    const audio = await this.decoder.decode(codes, 1, q);
    const t2 = performance.now();
    const out = this.toDevice.process(audio);
    this.playbackPort.postMessage(out, [out.buffer]);
    this.frames++;
    this.times.push(t2 - t0);
    this.recent.push(t2 - t0);
    if (this.times.length > TIMING_WINDOW) this.times.shift();
    this.inputLevel.add(frame);
    this.outputLevel.add(audio);
    if (this.record) {
      this.record.input.push(frame);
      const sent = new Int32Array(config.n_codebooks).fill(-1); // -1: a codebook not sent
      sent.set(codes);
      this.record.codes.push(sent);
      this.record.codebooks.push(q);
      this.record.output.push(audio);
      this.record.computeMs.push(t2 - t0);
      this.record.encodeMs.push(t1 - t0);
    }
    if (t2 - this.lastStats > 100) {
      this.lastStats = t2;
      postMessage({ type: 'stats', ...this.stats() });
    }
  }

  stats() {
    const sorted = [...this.times].sort((a, b) => a - b);
    const audioSeconds = (this.frames * this.frameSize) / config.sample_rate;
    const recent = this.recent;
    this.recent = [];
    return {
      recent,
      frames: this.frames,
      seconds: audioSeconds,
      codebooks: this.codebooks,
      computeMs: {
        last: this.times.at(-1) ?? null,
        p50: percentile(sorted, 50),
        p95: percentile(sorted, 95),
        max: sorted.at(-1) ?? null,
      },
      inputDb: this.inputLevel.take(),
      outputDb: this.outputLevel.take(),
      overflows: this.overflows,
      resamplerDelayMs: (1000 * this.toModel.delaySamples) / config.sample_rate,
    };
  }

  collect() {
    const r = this.record;
    if (!r) return null;
    return {
      sampleRate: config.sample_rate,
      frameSize: this.frameSize,
      nCodebooks: config.n_codebooks,
      input: concat(r.input, Float32Array),
      codes: concat(r.codes, Int32Array),
      codebooks: Uint8Array.from(r.codebooks),
      output: concat(r.output, Float32Array),
      computeMs: Float64Array.from(r.computeMs),
      encodeMs: Float64Array.from(r.encodeMs),
    };
  }

  stop() {
    this.stopped = true;
    this.capturePort.onmessage = null;
    this.capturePort.close();
    this.playbackPort.close();
  }
}

/** A whole signal at the model's rate through encoder and decoder, `FILE_CHUNK_FRAMES` frames per call. */
async function decodeAudio(id, samples, q) {
  const frameSize = config.frame_size;
  const frames = Math.ceil(samples.length / frameSize);
  const padded = new Float32Array(frames * frameSize);
  padded.set(samples);
  const encoder = new StreamEncoder(model);
  const decoder = new StreamDecoder(model);
  const allCodes = new Int32Array(frames * q);
  const output = new Float32Array(frames * frameSize);
  const t0 = performance.now();
  for (let f = 0; f < frames; f += FILE_CHUNK_FRAMES) {
    const k = Math.min(FILE_CHUNK_FRAMES, frames - f);
    const codes = await encoder.encode(padded.subarray(f * frameSize, (f + k) * frameSize), q);
    allCodes.set(codes, f * q);
    output.set(await decoder.decode(codes, k, q), f * frameSize);
    postMessage({ type: 'progress', id, done: f + k, total: frames });
  }
  const ms = performance.now() - t0;
  const decoded = output.slice(0, samples.length);
  postMessage({ type: 'result', id, decoded, codes: allCodes, codebooks: q, computeMs: ms }, [decoded.buffer]);
}

/** Codes [frames, q] (from a .sscb the server unpacked) through the decoder alone. */
async function decodeCodes(id, codes, frames, q, samples) {
  const frameSize = config.frame_size;
  const decoder = new StreamDecoder(model);
  const output = new Float32Array(frames * frameSize);
  const t0 = performance.now();
  for (let f = 0; f < frames; f += FILE_CHUNK_FRAMES) {
    const k = Math.min(FILE_CHUNK_FRAMES, frames - f);
    output.set(await decoder.decode(codes.subarray(f * q, (f + k) * q), k, q), f * frameSize);
    postMessage({ type: 'progress', id, done: f + k, total: frames });
  }
  const decoded = output.slice(0, samples);
  postMessage({ type: 'result', id, decoded, codebooks: q, computeMs: performance.now() - t0 }, [decoded.buffer]);
}

/**
 * The slider moved to `q`. The live loop switches once the encoder for that count is open (the state carries
 * over); until then it keeps sending the count it has. One count is opened at a time, and a drag across many
 * counts opens only the one in flight and the last (found from outside: opening every count passed made the
 * chosen one wait seconds behind the others). Opened even when idle, so that a start or a file finds it ready.
 * Opening a graph holds the worker's one thread (tens of ms): the first switch to a count costs a short gap.
 */
let wantedCodebooks = null;
let readyCodebooks = null; // the last count the slider asked for whose graph opened: where a start begins
let switching = false;
async function switchCodebooks(q) {
  wantedCodebooks = q;
  if (switching || !model) return;
  switching = true;
  try {
    for (let target = null; target !== wantedCodebooks; ) {
      target = wantedCodebooks;
      try {
        await model.encoderFor(target);
        readyCodebooks = target;
        if (live && target === wantedCodebooks) live.codebooks = target; // not a count passed over
      } catch (error) {
        if (target !== wantedCodebooks) continue; // moved on meanwhile: the newer count is what matters
        // `codebooks`: what is still sent (or where a start would begin), which the slider shows again unless
        // it has moved on from `failed` (moving it retries).
        const codebooks = live && !live.stopped ? live.codebooks : readyCodebooks;
        const message = `no encoder for ${target} codebooks: ${error.message ?? error}`;
        postMessage({ type: 'error', codebooks, failed: target, message });
      }
    }
  } finally {
    switching = false;
  }
}

const handlers = {
  async init({ modelConfig }) {
    config = modelConfig;
    const t0 = performance.now();
    model = await CodecModel.load(config, new URL('./', import.meta.url));
    readyCodebooks = config.codebooks;
    postMessage({ type: 'ready', loadMs: performance.now() - t0 });
  },
  start({ id, deviceRate, capturePort, playbackPort, codebooks, record }) {
    live?.stop();
    // Found in review: a start at a count still opening waited for it (seconds of input dropped) and one whose
    // graph had failed ended the session. It begins at an open count and switches when the chosen one is open.
    const begin = model.opened.has(codebooks) ? codebooks : readyCodebooks;
    live = new LiveSession(id, deviceRate, capturePort, playbackPort, begin, record);
    if (begin !== codebooks) switchCodebooks(codebooks);
  },
  codebooks({ codebooks }) {
    switchCodebooks(codebooks);
  },
  stop() {
    if (live) {
      postMessage({ type: 'stats', ...live.stats() });
      live.stop();
    }
  },
  collect({ id }) {
    const data = live?.collect() ?? null;
    const transfer = data ? Object.values(data).filter((v) => ArrayBuffer.isView(v)).map((v) => v.buffer) : [];
    postMessage({ type: 'result', id, data }, transfer);
  },
  decodeAudio({ id, samples, codebooks }) {
    return decodeAudio(id, samples, codebooks);
  },
  decodeCodes({ id, codes, frames, codebooks, samples }) {
    return decodeCodes(id, codes, frames, codebooks, samples);
  },
};

// Loading and file decoding run one after another (a file waits for the model); the live controls act at once.
const SERIAL = new Set(['init', 'decodeAudio', 'decodeCodes']);
let chain = Promise.resolve();
onmessage = (event) => {
  const message = event.data;
  const fail = (error) => postMessage({ type: 'error', id: message.id, message: String(error.message ?? error) });
  if (SERIAL.has(message.type)) {
    chain = chain.then(() => handlers[message.type](message)).catch(fail);
  } else {
    try {
      handlers[message.type](message);
    } catch (error) {
      fail(error);
    }
  }
};
