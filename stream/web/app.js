// The page: model info, the live controls and meters, file decoding. Audio capture and playback are the
// worklets' (worklets.js), the codec is the worker's (codec-worker.js); this module only wires them to the UI.
// Everything about the model comes from api/model (the ONNX metadata), nothing is assumed here.

import { fetchFromServer } from './server.js';
import { floatWav } from './wav.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const RECORD = params.has('record'); // keep the live input, codes and output for window.sscodec.collect()

let config = null;
let worker = null;
let audio = null; // the running live session's nodes and stream
let liveId = 0; // the number of the last live session started, which the worker's errors name
let nextId = 1;
const pending = new Map(); // worker request id → {resolve, reject, onProgress}
const PLOT_FRAMES = 250; // frames in the compute-time plot (5 s of 20 ms frames)
const plot = []; // recent per-frame compute times
let latestStats = null;
let playbackStats = { underflows: 0, overflows: 0, queued: 0 };
let decodedFile = null;

function request(message, transfer = [], onProgress = null) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject, onProgress });
    worker.postMessage({ ...message, id }, transfer);
  });
}

function setStatus(element, text, error = false) {
  element.textContent = text;
  element.classList.toggle('error', error);
}

// A file's length and what coding it cost, readable for a 6 ms clip as for a 6 minute one (a tiny file read
// "0.00 s ... (0× real time)").
function clipLength(seconds) {
  return seconds >= 1 ? `${seconds.toFixed(2)} s` : `${(seconds * 1000).toPrecision(3)} ms`;
}

function computeTime(seconds, ms) {
  if (!(ms >= 1)) return 'in under 1 ms';
  const speed = (seconds * 1000) / ms;
  return `in ${Math.round(ms)} ms (${speed >= 10 ? speed.toFixed(0) : speed.toPrecision(2)}× real time)`;
}

function bitrateLabel(q) {
  const kbps = q * config.kbps_per_codebook;
  return `${q} codebook${q === 1 ? '' : 's'} · ${kbps.toFixed(1)} kbps`;
}

function fmt(ms, digits = 2) {
  return ms == null ? '–' : ms.toFixed(digits);
}

/** Put the slider and its bitrate label at `q` codebooks (without telling the worker). */
function showCodebooks(q) {
  $('codebooks').value = q;
  $('bitrate').textContent = bitrateLabel(q);
}

async function init() {
  const response = await fetchFromServer('api/model');
  if (!response.ok) throw new Error(`api/model: HTTP ${response.status}`);
  config = await response.json();
  const precision = config.precision === 'unknown' ? '' : ` ${config.precision}`;
  $('model-line').textContent =
    `Model “${config.name}”${precision}: ${config.sample_rate / 1000} kHz, ${config.frame_ms} ms frames, ` +
    `${config.n_codebooks} codebooks × ${config.bits_per_code} bits (${config.kbps_per_codebook} kbps each) · ` +
    `ONNX Runtime Web ${config.onnxruntime_web}, WebAssembly SIMD, one thread`;
  $('codebooks').max = config.n_codebooks;
  showCodebooks(config.codebooks);

  worker = new Worker(new URL('codec-worker.js', import.meta.url), { type: 'module' });
  worker.onmessage = onWorkerMessage;
  worker.onerror = (event) => setStatus($('status'), `The codec worker failed: ${event.message}`, true);
  const ready = new Promise((resolve, reject) => {
    pending.set('init', { resolve, reject });
  });
  worker.postMessage({ type: 'init', id: 'init', modelConfig: config });
  const { loadMs } = await ready;
  // Browsers offer the microphone only to https and localhost pages (found from outside: on a page served to
  // another machine, Start failed with "Cannot read properties of undefined (reading 'addModule')").
  const noMicrophone = !window.isSecureContext
    ? `the microphone needs an https or localhost page, and this is ${location.origin}`
    : !navigator.mediaDevices?.getUserMedia || !window.AudioWorkletNode
      ? 'this browser offers no microphone capture (getUserMedia with AudioWorklet)'
      : null;
  if (noMicrophone) {
    setStatus($('status'), `Model loaded in ${Math.round(loadMs)} ms. Drop a file to code it; ${noMicrophone}.`);
    $('start').title = noMicrophone;
  } else {
    setStatus($('status'), `Model loaded in ${Math.round(loadMs)} ms. Start the microphone or drop a file.`);
    $('start').disabled = false;
  }
  $('codebooks').disabled = false;
}

function onWorkerMessage(event) {
  const message = event.data;
  if (message.type === 'stats') {
    latestStats = message;
    plot.push(...message.recent);
    if (plot.length > PLOT_FRAMES) plot.splice(0, plot.length - PLOT_FRAMES);
    return;
  }
  if (message.type === 'ready') {
    pending.get('init')?.resolve(message);
    pending.delete('init');
    return;
  }
  const waiting = pending.get(message.id);
  if (message.type === 'progress') {
    waiting?.onProgress?.(message.done, message.total);
  } else if (message.type === 'result') {
    waiting?.resolve(message);
    pending.delete(message.id);
  } else if (message.type === 'error') {
    if (waiting) {
      waiting.reject(new Error(message.message));
      pending.delete(message.id);
    } else if (message.live !== undefined) {
      if (message.live === liveId) stopLive(message.message); // not a newer session's
    } else {
      setStatus($('status'), message.message, true);
      // What is still sent, unless the user has already moved on from the count that failed.
      if (Number($('codebooks').value) === message.failed) showCodebooks(message.codebooks);
    }
  }
}

// ---- live ----

async function startLive() {
  const button = $('start');
  button.disabled = true;
  let context = null;
  let stream = null;
  try {
    context = new AudioContext({ latencyHint: 'interactive' });
    await context.audioWorklet.addModule(new URL('worklets.js', import.meta.url));
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    const frameAtDevice = Math.ceil((config.frame_size * context.sampleRate) / config.sample_rate);
    const source = context.createMediaStreamSource(stream);
    const capture = new AudioWorkletNode(context, 'sscodec-capture', { numberOfInputs: 1, numberOfOutputs: 1 });
    const playback = new AudioWorkletNode(context, 'sscodec-playback', {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      // Start playing with a frame and a render quantum queued; keep at least half a frame and a quantum spare
      // (more is trimmed after a second), never more than five frames.
      processorOptions: {
        prebuffer: frameAtDevice + 128,
        slack: Math.ceil(frameAtDevice / 2) + 128,
        maxQueued: 5 * frameAtDevice,
        window: Math.round(context.sampleRate / 128),
      },
    });
    const fromCapture = new MessageChannel();
    const toPlayback = new MessageChannel();
    capture.port.postMessage({ port: fromCapture.port1 }, [fromCapture.port1]);
    playback.port.postMessage({ port: toPlayback.port2 }, [toPlayback.port2]);
    playbackStats = { underflows: 0, overflows: 0, queued: 0 };
    plot.length = 0;
    latestStats = null;
    playback.port.onmessage = (event) => {
      playbackStats = event.data;
    };
    // Set before the worker starts, so that an error from its side finds a session to stop.
    audio = { context, stream, source, capture, playback, frameAtDevice };
    liveId += 1;
    worker.postMessage(
      {
        type: 'start',
        id: liveId,
        deviceRate: context.sampleRate,
        capturePort: fromCapture.port2,
        playbackPort: toPlayback.port1,
        codebooks: Number($('codebooks').value),
        record: RECORD,
      },
      [fromCapture.port2, toPlayback.port1],
    );
    source.connect(capture);
    capture.connect(context.destination); // the capture node outputs silence; connected so that it is pulled
    playback.connect(context.destination);
    await context.resume();
    if (audio?.context !== context) return; // stopped meanwhile (its error is on the status line)
    setStatus($('status'), `Running at ${context.sampleRate} Hz on the device, resampled to ` +
      `${config.sample_rate} Hz for the codec. Speak!`);
    button.textContent = 'Stop';
    button.classList.add('stop');
  } catch (error) {
    if (context?.state === 'closed' && audio?.context !== context) return; // stopLive took over, with its message
    if (audio?.context === context) {
      audio = null;
      worker.postMessage({ type: 'stop' });
    }
    setStatus($('status'), `Could not start the microphone: ${error.message ?? error}`, true);
    stream?.getTracks().forEach((track) => track.stop());
    if (context?.state !== 'closed') await context?.close();
  } finally {
    button.disabled = false;
  }
}

/** Stop the live session: by the user, or with `error` when the worker's side stopped. */
async function stopLive(error = null) {
  if (!audio) return;
  const { stream, context } = audio;
  const button = $('start');
  // A second click while the context closes must neither close it again nor start at once (found from
  // outside: a double click on Stop threw "Cannot close a closed AudioContext").
  audio = null;
  button.disabled = true;
  worker.postMessage({ type: 'stop' });
  stream.getTracks().forEach((track) => track.stop());
  button.textContent = 'Start microphone';
  button.classList.remove('stop');
  if (error) {
    setStatus($('status'), error, true);
  } else {
    setStatus($('status'), 'Stopped. The numbers below are from the last run.');
  }
  try {
    await context.close();
  } finally {
    button.disabled = false;
  }
}

function drawTimeline() {
  const canvas = $('timeline');
  const scale = window.devicePixelRatio || 1;
  const width = canvas.clientWidth * scale;
  const height = canvas.clientHeight * scale;
  if (canvas.width !== width || canvas.height !== height) Object.assign(canvas, { width, height });
  const g = canvas.getContext('2d');
  g.clearRect(0, 0, width, height);
  const budget = config.frame_ms;
  const top = 2 * budget; // taller bars are clipped (and red: they took longer than the audio they coded)
  const y = (ms) => height - (Math.min(ms, top) / top) * (height - 4 * scale);
  const barWidth = width / PLOT_FRAMES;
  plot.forEach((ms, i) => {
    g.fillStyle = ms > budget ? '#d2433a' : '#2f6fde';
    g.fillRect(i * barWidth, y(ms), Math.max(1, barWidth - scale), height - y(ms));
  });
  g.strokeStyle = '#d98a00';
  g.setLineDash([6 * scale, 4 * scale]);
  g.lineWidth = 1.5 * scale;
  g.beginPath();
  g.moveTo(0, y(budget));
  g.lineTo(width, y(budget));
  g.stroke();
  g.setLineDash([]);
  const label = `${budget} ms = one frame of audio`;
  g.font = `${11 * scale}px system-ui, sans-serif`;
  const labelWidth = g.measureText(label).width + 8 * scale;
  g.fillStyle = 'rgb(251 251 252 / 90%)';
  g.fillRect(width - labelWidth - 4 * scale, y(budget) - 16 * scale, labelWidth, 14 * scale);
  g.fillStyle = '#5d6677';
  g.fillText(label, width - labelWidth, y(budget) - 5 * scale);
}

function meter(id, valueId, db) {
  const clamped = Math.max(-60, Math.min(0, db));
  $(id).style.width = `${((clamped + 60) / 60) * 100}%`;
  $(valueId).textContent = Number.isFinite(db) ? `${db.toFixed(1)} dBFS` : '−∞ dBFS';
}

function render() {
  const s = latestStats;
  if (s) {
    meter('meter-in', 'db-in', s.inputDb.peak);
    meter('meter-out', 'db-out', s.outputDb.peak);
    $('compute').textContent = `${fmt(s.computeMs.p50)} ms`;
    $('compute-sub').textContent =
      `median · p95 ${fmt(s.computeMs.p95, 1)} · max ${fmt(s.computeMs.max, 0)}`;
    $('rtf').textContent = s.computeMs.p50 == null ? '–' : (s.computeMs.p50 / config.frame_ms).toFixed(3);
    $('rtf-sub').textContent = s.computeMs.p50 == null ? '' : `${(config.frame_ms / s.computeMs.p50).toFixed(0)}× real time`;
    $('frames').textContent = s.frames.toLocaleString('en');
    $('frames-sub').textContent = `${s.seconds.toFixed(1)} s of audio`;
    $('overflows').textContent = (s.overflows + playbackStats.overflows).toLocaleString('en');
    $('underflows').textContent = playbackStats.underflows.toLocaleString('en');
    if (audio) {
      const deviceMs = 1000 * ((audio.context.baseLatency || 0) + (audio.context.outputLatency || 0));
      const queuedMs = (1000 * playbackStats.queued) / audio.context.sampleRate;
      const total = config.frame_ms + 2 * s.resamplerDelayMs + queuedMs + deviceMs;
      $('delay').textContent = `≈ ${Math.round(total)} ms`;
      $('delay-sub').textContent = `frame ${config.frame_ms} · queue ${Math.round(queuedMs)} · ` +
        `device ${Math.round(deviceMs)} ms`;
    }
    drawTimeline();
  }
  requestAnimationFrame(render);
}

// ---- files ----

class FileError extends Error {} // a message that already names the file

async function decodeFile(file) {
  const status = $('file-status');
  const progress = $('file-progress');
  $('save').disabled = true;
  progress.hidden = false;
  progress.value = 0;
  const onProgress = (done, total) => {
    progress.value = done / total;
  };
  try {
    const bytes = await file.arrayBuffer();
    const magic = new TextDecoder().decode(new Uint8Array(bytes, 0, Math.min(4, bytes.byteLength)));
    let result;
    let what;
    if (magic === 'SSCB') {
      // The server's limit, before the upload (found from outside: 70 MB sent for 11 s, then refused).
      if (file.size > config.max_upload_bytes) {
        throw new FileError(`${file.name}: files above ${config.max_upload_bytes / 2 ** 20} MB are refused`);
      }
      setStatus(status, `Unpacking ${file.name}…`);
      const response = await fetchFromServer(`api/sscb?name=${encodeURIComponent(file.name)}`, { method: 'POST', body: bytes });
      const unpacked = await response.json();
      if (!response.ok) throw new FileError(unpacked.error); // it names the file
      const codes = new Int32Array(Uint8Array.from(atob(unpacked.codes), (c) => c.charCodeAt(0)).buffer);
      setStatus(status, `Decoding ${file.name}…`);
      result = await request({ type: 'decodeCodes', codes, frames: unpacked.frames, codebooks: unpacked.codebooks,
        samples: unpacked.samples }, [codes.buffer], onProgress);
      what = `${unpacked.mode} file, ${unpacked.codebooks} codebooks`;
    } else {
      setStatus(status, `Reading ${file.name}…`);
      // Decoded (and, at another rate, resampled) by the browser straight to the model's rate.
      const offline = new OfflineAudioContext(1, 1, config.sample_rate);
      const buffer = await offline.decodeAudioData(bytes);
      const samples = new Float32Array(buffer.length);
      for (let c = 0; c < buffer.numberOfChannels; c++) {
        const channel = buffer.getChannelData(c);
        for (let i = 0; i < samples.length; i++) samples[i] += channel[i] / buffer.numberOfChannels;
      }
      // As every reader in Python checks (found from outside: a float WAV's NaN sample was coded as if fine).
      if (!samples.every(Number.isFinite)) throw new FileError(`${file.name}: contains NaN or Inf samples`);
      const q = Number($('codebooks').value);
      setStatus(status, `Encoding and decoding ${file.name}…`);
      result = await request({ type: 'decodeAudio', samples, codebooks: q }, [samples.buffer], onProgress);
      what = `encoded and decoded at ${bitrateLabel(q)}`;
    }
    const seconds = result.decoded.length / config.sample_rate;
    decodedFile = { name: file.name.replace(/\.[^.]*$/, '') + '_decoded.wav', ...result };
    const url = URL.createObjectURL(floatWav(result.decoded, config.sample_rate));
    const player = $('player');
    if (player.src) URL.revokeObjectURL(player.src);
    player.src = url;
    player.hidden = false;
    $('save').disabled = false;
    setStatus(status, `${file.name}: ${clipLength(seconds)}, ${what}, ${computeTime(seconds, result.computeMs)}.`);
  } catch (error) {
    decodedFile = null;
    $('player').hidden = true;
    setStatus(status, error instanceof FileError ? error.message : `${file.name}: ${error.message ?? error}`, true);
  } finally {
    progress.hidden = true;
  }
}

function saveDecoded() {
  if (!decodedFile) return;
  const link = document.createElement('a');
  link.href = $('player').src;
  link.download = decodedFile.name;
  link.click();
}

// ---- wiring ----

$('start').addEventListener('click', () => (audio ? stopLive() : startLive()));
$('codebooks').addEventListener('input', (event) => {
  const q = Number(event.target.value);
  $('bitrate').textContent = bitrateLabel(q);
  worker?.postMessage({ type: 'codebooks', codebooks: q });
});
$('save').addEventListener('click', saveDecoded);
$('file-input').addEventListener('change', (event) => {
  if (event.target.files[0]) decodeFile(event.target.files[0]);
  event.target.value = '';
});
const drop = $('drop');
drop.addEventListener('dragover', (event) => {
  event.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  if (event.dataTransfer.files[0]) decodeFile(event.dataTransfer.files[0]);
});

function toBase64(view) {
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

// For tests and for looking inside: the state of the page, and (with ?record) what the live codec was fed, the
// codes it produced and what it decoded, as base64 of little-endian arrays.
window.sscodec = {
  ready: init().then(
    () => true,
    (error) => {
      setStatus($('status'), `Could not load the model: ${error.message ?? error}`, true);
      throw error;
    },
  ),
  get config() {
    return config;
  },
  get stats() {
    return latestStats && { ...latestStats, underflows: playbackStats.underflows,
      playbackOverflows: playbackStats.overflows, running: audio !== null };
  },
  async collect() {
    const { data } = await request({ type: 'collect' });
    if (!data) return null;
    const out = {};
    for (const [key, value] of Object.entries(data)) out[key] = ArrayBuffer.isView(value) ? toBase64(value) : value;
    return out;
  },
  get lastFile() {
    if (!decodedFile) return null;
    const { name, decoded, codes, codebooks, computeMs } = decodedFile;
    return { name, codebooks, computeMs, decoded: toBase64(decoded), codes: codes ? toBase64(codes) : null };
  },
};

requestAnimationFrame(render);
