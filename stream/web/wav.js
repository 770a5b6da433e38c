// Mono 32-bit float WAV (WAVE_FORMAT_IEEE_FLOAT): the decoded samples exactly, readable by soundfile, ffmpeg,
// Audacity and browsers.

export function floatWav(samples, sampleRate) {
  const dataBytes = samples.length * 4;
  const buffer = new ArrayBuffer(58 + dataBytes);
  const view = new DataView(buffer);
  const text = (offset, s) => [...s].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, 'RIFF');
  view.setUint32(4, 50 + dataBytes, true);
  text(8, 'WAVE');
  text(12, 'fmt ');
  view.setUint32(16, 18, true); // fmt chunk size (with cbSize, as non-PCM formats require)
  view.setUint16(20, 3, true); // IEEE float
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * 4, true); // bytes per second
  view.setUint16(32, 4, true); // block align
  view.setUint16(34, 32, true); // bits per sample
  view.setUint16(36, 0, true); // cbSize
  text(38, 'fact');
  view.setUint32(42, 4, true);
  view.setUint32(46, samples.length, true);
  text(50, 'data');
  view.setUint32(54, dataBytes, true);
  for (let i = 0; i < samples.length; i++) view.setFloat32(58 + 4 * i, samples[i], true);
  return new Blob([buffer], { type: 'audio/wav' });
}
