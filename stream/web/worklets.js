// The two AudioWorklet processors: they only copy samples, on the audio thread. Everything else (resampling, the
// codec, statistics) runs in the codec worker, which each talks to over a MessagePort handed over at start.

// Microphone → worker: each render quantum (mono, at the context's rate) is posted as it arrives.
class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.target = null;
    this.port.onmessage = (event) => {
      if (event.data.port) this.target = event.data.port;
    };
  }

  process(inputs) {
    const channels = inputs[0];
    if (this.target && channels.length > 0) {
      const block = new Float32Array(channels[0].length);
      for (const channel of channels) for (let i = 0; i < block.length; i++) block[i] += channel[i];
      if (channels.length > 1) for (let i = 0; i < block.length; i++) block[i] /= channels.length;
      this.target.postMessage(block, [block.buffer]);
    }
    return true;
  }
}

// Worker → speakers: decoded audio (at the context's rate) is queued and played. A quantum the queue cannot fill
// once playback has started is an underflow (played partly as silence; playback then waits for `prebuffer`
// again). The delay is kept short: when the queue never fell below `slack` samples for a whole `window` of
// quanta (a stall's backlog that would otherwise stay for good), or holds more than `maxQueued`, the oldest
// samples beyond `slack` are dropped; each drop counts as an overflow.
class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    Object.assign(this, options.processorOptions); // prebuffer, slack, maxQueued, window
    this.queue = [];
    this.offset = 0; // read position in queue[0]
    this.queued = 0;
    this.playing = false;
    this.underflows = 0;
    this.overflows = 0;
    this.lowest = Infinity; // the fewest samples queued in this window
    this.quanta = 0;
    this.lastReport = 0;
    this.port.onmessage = (event) => {
      if (event.data.port) event.data.port.onmessage = (e) => this.enqueue(e.data);
    };
  }

  enqueue(block) {
    this.queue.push(block);
    this.queued += block.length;
    if (this.queued > this.maxQueued) this.drop(this.queued - this.slack);
  }

  drop(samples) {
    this.overflows++;
    let left = samples;
    while (left > 0 && this.queue.length > 0) {
      const n = Math.min(left, this.queue[0].length - this.offset);
      this.take(n);
      left -= n;
    }
  }

  take(n) {
    this.offset += n;
    this.queued -= n;
    if (this.offset === this.queue[0].length) {
      this.queue.shift();
      this.offset = 0;
    }
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    if (!this.playing && this.queued >= this.prebuffer) this.playing = true;
    let written = 0;
    if (this.playing) {
      while (written < out.length && this.queue.length > 0) {
        const n = Math.min(out.length - written, this.queue[0].length - this.offset);
        out.set(this.queue[0].subarray(this.offset, this.offset + n), written);
        written += n;
        this.take(n);
      }
      if (written < out.length) {
        this.underflows++;
        this.playing = false; // wait for the prebuffer again rather than click on every quantum
        this.lowest = Infinity;
        this.quanta = 0;
      } else {
        this.lowest = Math.min(this.lowest, this.queued);
        if (++this.quanta >= this.window) {
          if (this.lowest > this.slack) this.drop(this.lowest - this.slack);
          this.lowest = Infinity;
          this.quanta = 0;
        }
      }
    }
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    if (currentTime - this.lastReport >= 0.25) {
      this.lastReport = currentTime;
      this.port.postMessage({ underflows: this.underflows, overflows: this.overflows, queued: this.queued });
    }
    return true;
  }
}

registerProcessor('sscodec-capture', CaptureProcessor);
registerProcessor('sscodec-playback', PlaybackProcessor);
