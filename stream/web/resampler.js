// A streaming polyphase resampler between two integer rates (the audio device's and the model's): Kaiser-windowed
// sinc, each phase normalised to unit gain at DC. Blocks of any size in, the samples they complete out; the
// output lags the input by `delaySamples` (output rate), about a millisecond with the defaults.

function gcd(a, b) {
  while (b) [a, b] = [b, a % b];
  return a;
}

function besselI0(x) {
  let sum = 1;
  let term = 1;
  for (let k = 1; k < 50; k++) {
    term *= (x / (2 * k)) ** 2;
    sum += term;
    if (term < 1e-12 * sum) break;
  }
  return sum;
}

export class Resampler {
  /**
   * @param {number} inRate input rate in Hz (integer)
   * @param {number} outRate output rate in Hz (integer)
   * @param {object} options zeros: zero crossings of the filter on each side; rolloff: pass band as a share of the
   *   lower Nyquist frequency; beta: Kaiser window parameter (8.6: about 80 dB stop band)
   */
  constructor(inRate, outRate, { zeros = 16, rolloff = 0.92, beta = 8.6 } = {}) {
    if (!(Number.isInteger(inRate) && Number.isInteger(outRate) && inRate > 0 && outRate > 0)) {
      throw new Error(`rates must be positive integers, got ${inRate} and ${outRate}`);
    }
    const g = gcd(inRate, outRate);
    this.up = outRate / g; // L: output samples per ...
    this.down = inRate / g; // M: ... input samples
    if (this.up > 8192) throw new Error(`cannot resample ${inRate} Hz to ${outRate} Hz (ratio too fine)`);
    this.identity = this.up === this.down;
    const cutoff = rolloff * Math.min(1, outRate / inRate); // in cycles per input sample, times 2
    this.half = Math.ceil(zeros / cutoff); // taps on each side, in input samples
    const taps = 2 * this.half;
    this.taps = taps;
    this.table = new Float32Array(this.up * taps);
    const norm = besselI0(beta);
    for (let p = 0; p < this.up; p++) {
      let sum = 0;
      for (let k = 0; k < taps; k++) {
        const x = k - this.half + 1 - p / this.up; // input position of tap k relative to the output instant
        const w = Math.abs(x) >= this.half ? 0 : besselI0(beta * Math.sqrt(1 - (x / this.half) ** 2)) / norm;
        const s = x === 0 ? 1 : Math.sin(Math.PI * cutoff * x) / (Math.PI * cutoff * x);
        this.table[p * taps + k] = cutoff * s * w;
        sum += this.table[p * taps + k];
      }
      for (let k = 0; k < taps; k++) this.table[p * taps + k] /= sum;
    }
    this.delaySamples = this.identity ? 0 : Math.ceil((this.half * outRate) / inRate);
    this.reset();
  }

  reset() {
    // History starts with `half - 1` zeros: input before the stream began is silence.
    this.buffer = new Float32Array(Math.max(1024, 4 * this.taps));
    this.length = this.half - 1; // valid samples in buffer
    this.start = -(this.half - 1); // input index of buffer[0]
    this.next = 0; // index of the next output sample
    this.received = 0; // input samples received
  }

  /** Resample one block (Float32Array); returns the output samples it completes (a new Float32Array). */
  process(block) {
    if (this.identity) return Float32Array.from(block);
    this._append(block);
    const { up, down, taps, half, table } = this;
    // Output n is at input time n·M/L; it needs input up to index floor(n·M/L) + half.
    let count = 0;
    while (Math.floor(((this.next + count) * down) / up) + half < this.received) count++;
    const out = new Float32Array(count);
    for (let j = 0; j < count; j++) {
      const n = this.next + j;
      const i = Math.floor((n * down) / up);
      const phase = (n * down) % up;
      const first = i - half + 1 - this.start; // buffer index of tap 0
      let acc = 0;
      const row = phase * taps;
      for (let k = 0; k < taps; k++) acc += this.buffer[first + k] * table[row + k];
      out[j] = acc;
    }
    this.next += count;
    this._trim();
    return out;
  }

  _append(block) {
    if (this.length + block.length > this.buffer.length) {
      const grown = new Float32Array(2 * (this.length + block.length));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    this.buffer.set(block, this.length);
    this.length += block.length;
    this.received += block.length;
  }

  _trim() {
    // Keep from the first tap of the next output on.
    const keepFrom = Math.floor((this.next * this.down) / this.up) - this.half + 1;
    const drop = keepFrom - this.start;
    if (drop > 0 && drop >= this.buffer.length / 2) {
      this.buffer.copyWithin(0, drop, this.length);
      this.length -= drop;
      this.start += drop;
    }
  }
}
