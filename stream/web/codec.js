// The codec in the browser: both stream graphs in ONNX Runtime Web (WebAssembly, SIMD, one thread), with a
// StreamEncoder and a StreamDecoder that each keep their own flat state, as stream/encoder.py and
// stream/decoder.py do. No UI, no audio devices: the worker (codec-worker.js) and any other page can use it.
// Every size comes from the model's config (GET api/model, read from the ONNX metadata by the server).

import * as ort from './vendor/onnxruntime-web/ort.wasm.min.mjs';
import { fetchFromServer } from './server.js';

export const ORT_VERSION = ort.env.versions.web;

/** Fetch the model's config (its ONNX metadata, as the server reads it). */
export async function fetchModelConfig(base = new URL('./', import.meta.url)) {
  const response = await fetchFromServer(new URL('api/model', base));
  if (!response.ok) throw new Error(`api/model: HTTP ${response.status}`);
  return response.json();
}

/**
 * Both graphs of one model; the sessions hold no stream state, so encoders and decoders share them. The encoder
 * is opened once per codebook count sent: the server cuts it to search only those codebooks (the same codes and
 * state as the whole graph; stream/codebook_search.py), so a sender of fewer pays for fewer.
 */
export class CodecModel {
  static async load(config, base = new URL('./', import.meta.url)) {
    ort.env.wasm.numThreads = 1; // one thread: no SharedArrayBuffer, no cross-origin isolation needed
    ort.env.wasm.proxy = false; // we already run in a worker
    ort.env.wasm.wasmPaths = new URL('vendor/onnxruntime-web/', base).href;
    ort.env.logLevel = 'error'; // not ONNX Runtime's start-up warnings (e.g. "Unknown CPU vendor" in WebAssembly)
    const model = new CodecModel(config, base);
    [model.decoder] = await Promise.all([model.open(config.graphs.decoder), model.encoderFor(config.codebooks)]);
    await model.warmUp();
    return model;
  }

  /** A few throwaway frames, so that the first real frame does not pay for first-run allocations. */
  async warmUp(frames = 3) {
    const q = this.config.codebooks;
    const encoder = new StreamEncoder(this);
    const decoder = new StreamDecoder(this);
    for (let i = 0; i < frames; i++) {
      await decoder.decode(await encoder.encode(new Float32Array(this.config.frame_size), q), 1, q);
    }
  }

  constructor(config, base) {
    this.config = config;
    this.base = base;
    this.decoder = null;
    this.encoders = new Map(); // codebook count -> Promise of its encoder session
    this.opened = new Set(); // the counts whose encoder session is open
    // Calls into one WebAssembly instance must not interleave: every run and every session creation goes
    // through this queue.
    this.queue = Promise.resolve();
  }

  /** The encoder session for a sender of the first `q` codebooks, fetched and opened once (a failed load is
   *  tried again on the next call). */
  encoderFor(q) {
    const n = this.config.n_codebooks;
    if (!(Number.isInteger(q) && q >= 1 && q <= n)) return Promise.reject(new Error(`need 1..${n} codebooks`));
    if (!this.encoders.has(q)) {
      const session = this.open(`${this.config.graphs.encoder}?codebooks=${q}`);
      session.then(() => this.opened.add(q), () => this.encoders.delete(q));
      this.encoders.set(q, session);
    }
    return this.encoders.get(q);
  }

  async open(path) {
    const response = await fetchFromServer(new URL(path, this.base));
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const options = {
      executionProviders: ['wasm'],
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      logSeverityLevel: 3,
    };
    return this.enqueue(() => ort.InferenceSession.create(bytes, options));
  }

  run(session, feeds) {
    return this.enqueue(() => session.run(feeds));
  }

  enqueue(call) {
    const result = this.queue.then(call);
    this.queue = result.catch(() => {});
    return result;
  }
}

/** One graph's stream: the shared model and this stream's flat state, zero at the start. */
class Stream {
  constructor(model, stateSizeKey) {
    this.model = model;
    this.stateSize = model.config[stateSizeKey];
    this.reset();
  }

  /** Start a new stream from a zero state. */
  reset() {
    this.state = new ort.Tensor('float32', new Float32Array(this.stateSize), [1, this.stateSize]);
  }
}

/** audio → codes, frame by frame, with its own encoder state (stream/encoder.py's encode_codes). The state
 *  is the same whatever the codebook count, so the count may change from one call to the next. */
export class StreamEncoder extends Stream {
  constructor(model) {
    super(model, 'encoder_state_size');
  }

  /** Codes (Int32Array [frames * q], frame-major) of the first `q` codebooks of whole frames of audio
   *  (Float32Array). */
  async encode(audio, q) {
    const { frame_size: frameSize } = this.model.config;
    if (audio.length === 0 || audio.length % frameSize) {
      throw new Error(`a chunk must be whole ${frameSize}-sample frames, got ${audio.length} samples`);
    }
    const session = await this.model.encoderFor(q);
    const frames = audio.length / frameSize;
    const out = await this.model.run(session, {
      audio: new ort.Tensor('float32', audio, [1, audio.length]),
      state: this.state,
    });
    this.state = out.next_state;
    const raw = out.codes.data; // BigInt64Array [1, q or more (a graph that could not be cut), frames]
    const codes = new Int32Array(frames * q);
    for (let c = 0; c < q; c++) {
      for (let f = 0; f < frames; f++) codes[f * q + c] = Number(raw[c * frames + f]);
    }
    return codes;
  }
}

/** codes → audio, with its own decoder state (stream/decoder.py's decode_codes). */
export class StreamDecoder extends Stream {
  constructor(model) {
    super(model, 'decoder_state_size');
  }

  /** Audio (Float32Array [frames * frame_size]) of codes [frames, q] (frame-major) of the first `q` codebooks. */
  async decode(codes, frames, q) {
    const { n_codebooks: n, codebook_size: size } = this.model.config;
    if (!(q >= 1 && q <= n && frames >= 1)) throw new Error(`need 1..${n} codebooks and >= 1 frame`);
    const input = new BigInt64Array(q * frames);
    for (let c = 0; c < q; c++) {
      for (let f = 0; f < frames; f++) {
        const code = codes[f * q + c];
        if (!(code >= 0 && code < size)) throw new Error(`codes must be in 0..${size - 1}, got ${code}`);
        input[c * frames + f] = BigInt(code);
      }
    }
    const out = await this.model.run(this.model.decoder, {
      codes: new ort.Tensor('int64', input, [1, q, frames]),
      state: this.state,
    });
    this.state = out.next_state;
    return out.audio.data;
  }
}
