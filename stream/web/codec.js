// The codec in the browser: both stream graphs in ONNX Runtime Web (WebAssembly, SIMD, one thread), with a
// StreamEncoder and a StreamDecoder that each keep their own flat state, as stream/encoder.py and
// stream/decoder.py do. No UI, no audio devices: the worker (codec-worker.js) and any other page can use it.
// Every size comes from the model's config (GET api/model, read from the ONNX metadata by the server).

import * as ort from './vendor/onnxruntime-web/ort.wasm.min.mjs';

export const ORT_VERSION = ort.env.versions.web;

/** Fetch the model's config (its ONNX metadata, as the server reads it). */
export async function fetchModelConfig(base = new URL('./', import.meta.url)) {
  const response = await fetch(new URL('api/model', base));
  if (!response.ok) throw new Error(`api/model: HTTP ${response.status}`);
  return response.json();
}

/** Both graphs of one model, loaded once; the sessions hold no stream state, so encoders and decoders share them. */
export class CodecModel {
  static async load(config, base = new URL('./', import.meta.url)) {
    ort.env.wasm.numThreads = 1; // one thread: no SharedArrayBuffer, no cross-origin isolation needed
    ort.env.wasm.proxy = false; // we already run in a worker
    ort.env.wasm.wasmPaths = new URL('vendor/onnxruntime-web/', base).href;
    ort.env.logLevel = 'error'; // not ONNX Runtime's start-up warnings (e.g. "Unknown CPU vendor" in WebAssembly)
    const options = {
      executionProviders: ['wasm'],
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      logSeverityLevel: 3,
    };
    const [encoder, decoder] = await Promise.all(
      [config.graphs.encoder, config.graphs.decoder].map(async (path) => {
        const response = await fetch(new URL(path, base));
        if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
        return ort.InferenceSession.create(new Uint8Array(await response.arrayBuffer()), options);
      }),
    );
    const model = new CodecModel(config, encoder, decoder);
    await model.warmUp();
    return model;
  }

  /** A few throwaway frames, so that the first real frame does not pay for first-run allocations. */
  async warmUp(frames = 3) {
    const encoder = new StreamEncoder(this);
    const decoder = new StreamDecoder(this);
    for (let i = 0; i < frames; i++) {
      await decoder.decode(await encoder.encode(new Float32Array(this.config.frame_size)), 1, this.config.n_codebooks);
    }
  }

  constructor(config, encoder, decoder) {
    this.config = config;
    this.encoder = encoder;
    this.decoder = decoder;
    // Calls into one WebAssembly instance must not interleave: every run goes through this queue.
    this.queue = Promise.resolve();
  }

  run(session, feeds) {
    const result = this.queue.then(() => session.run(feeds));
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

/** audio → codes, frame by frame, with its own encoder state (stream/encoder.py's encode_codes). */
export class StreamEncoder extends Stream {
  constructor(model) {
    super(model, 'encoder_state_size');
  }

  /** Codes (Int32Array [frames * n_codebooks], frame-major) of whole frames of audio (Float32Array). */
  async encode(audio) {
    const { frame_size: frameSize, n_codebooks: codebooks } = this.model.config;
    if (audio.length === 0 || audio.length % frameSize) {
      throw new Error(`a chunk must be whole ${frameSize}-sample frames, got ${audio.length} samples`);
    }
    const frames = audio.length / frameSize;
    const out = await this.model.run(this.model.encoder, {
      audio: new ort.Tensor('float32', audio, [1, audio.length]),
      state: this.state,
    });
    this.state = out.next_state;
    const raw = out.codes.data; // BigInt64Array [1, n_codebooks, frames]
    const codes = new Int32Array(frames * codebooks);
    for (let q = 0; q < codebooks; q++) {
      for (let f = 0; f < frames; f++) codes[f * codebooks + q] = Number(raw[q * frames + f]);
    }
    return codes;
  }
}

/** codes → audio, with its own decoder state (stream/decoder.py's decode_codes). */
export class StreamDecoder extends Stream {
  constructor(model) {
    super(model, 'decoder_state_size');
  }

  /** Audio (Float32Array [frames * frame_size]) of the first `q` codebooks of codes [frames, stride], frame-major. */
  async decode(codes, frames, q, stride = q) {
    const { n_codebooks: n, codebook_size: size } = this.model.config;
    if (!(q >= 1 && q <= n && frames >= 1)) throw new Error(`need 1..${n} codebooks and >= 1 frame`);
    const input = new BigInt64Array(q * frames);
    for (let c = 0; c < q; c++) {
      for (let f = 0; f < frames; f++) {
        const code = codes[f * stride + c];
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
