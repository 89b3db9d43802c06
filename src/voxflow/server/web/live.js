// Live transcription from the microphone: the page speaks the Speech service's websocket
// protocol (USP) to this server, as the Azure Speech SDK does, so interim results
// (speech.hypothesis) and final phrases (speech.phrase) come from the server's own turn logic.
"use strict";

const RATE = 16000; // the audio context runs at 16 kHz: the browser resamples the microphone
const FRAME = 1600; // samples per audio message: 100 ms, as the SDK sends
const LIVE_PATH = "/speech/recognition/conversation/cognitiveservices/v1";

const micButton = document.getElementById("mic");
const interim = document.getElementById("interim");
const finals = document.getElementById("finals");
const liveStatus = document.getElementById("live-status");
let live = null;

function hex(bytes) {
  return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function headerLines(headers) {
  return headers.map(([name, value]) => `${name}:${value}`).join("\r\n");
}

function textMessage(headers, body) {
  return `${headerLines([["X-Timestamp", new Date().toISOString()], ...headers])}\r\n\r\n${JSON.stringify(body)}`;
}

function audioMessage(requestId, payload, contentType) {
  const headers = [["X-Timestamp", new Date().toISOString()], ["Path", "audio"]];
  if (contentType) headers.push(["Content-Type", contentType]);
  headers.push(["X-RequestId", requestId], ["X-StreamId", "1"]);
  const head = new TextEncoder().encode(headerLines(headers));
  const out = new Uint8Array(2 + head.length + payload.byteLength);
  out[0] = head.length >> 8;
  out[1] = head.length & 0xff;
  out.set(head, 2);
  out.set(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength), 2 + head.length);
  return out;
}

// A streaming RIFF/WAVE header (sizes 0): 16 kHz, mono, 16-bit PCM.
function waveHeader() {
  const view = new DataView(new ArrayBuffer(44));
  const ascii = (at, text) => [...text].forEach((c, i) => view.setUint8(at + i, c.charCodeAt(0)));
  ascii(0, "RIFF");
  ascii(8, "WAVE");
  ascii(12, "fmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true);
  view.setUint16(22, 1, true);
  view.setUint32(24, RATE, true);
  view.setUint32(28, 2 * RATE, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  ascii(36, "data");
  return new Uint8Array(view.buffer);
}

function seconds(ticks) {
  return ticks / 1e7;
}

function showPhrase(body) {
  const item = document.createElement("li");
  item.className = "segment";
  const time = document.createElement("time");
  time.textContent = `${clock(seconds(body.Offset))}–${clock(seconds(body.Offset + body.Duration))}`;
  const lang = document.createElement("span");
  lang.className = "lang";
  lang.textContent = (body.PrimaryLanguage && body.PrimaryLanguage.Language) || "";
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = body.DisplayText;
  item.append(time, lang, text);
  finals.append(item);
}

function onServiceMessage(data) {
  if (typeof data !== "string") return;
  const split = data.indexOf("\r\n\r\n");
  const path = /^Path:\s*(\S+)/im.exec(data.slice(0, split));
  const body = split >= 0 && data.length > split + 4 ? JSON.parse(data.slice(split + 4)) : {};
  switch (path && path[1].toLowerCase()) {
    case "speech.hypothesis":
      interim.textContent = body.Text;
      break;
    case "speech.phrase":
      if (body.RecognitionStatus === "Success") {
        interim.textContent = "";
        showPhrase(body);
      }
      break;
    case "turn.end":
      if (live && live.stopping) live.socket.close(1000);
      break;
    default:
  }
}

async function start() {
  const requestId = hex(16);
  const stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
  const context = new AudioContext({ sampleRate: RATE });
  await context.audioWorklet.addModule("/static/mic-worklet.js");
  const mic = new AudioWorkletNode(context, "voxflow-mic");
  context.createMediaStreamSource(stream).connect(mic);
  mic.connect(context.destination); // it outputs silence; connected, it is run
  const language = field("language");
  const query = language ? `?language=${encodeURIComponent(language)}` : "";
  const socket = new WebSocket(`ws://${location.host}${LIVE_PATH}${query}`, "USP");
  socket.binaryType = "arraybuffer";
  live = { socket, stream, context, requestId, stopping: false };
  let pending = new Int16Array(FRAME);
  let filled = 0;
  socket.onopen = () => {
    const source = { type: "Stream", model: "", samplerate: String(RATE), bitspersample: "16", channelcount: "1" };
    socket.send(textMessage([["Path", "speech.config"], ["Content-Type", "application/json"]],
      { context: { system: { name: "voxflow-page", version: "0", build: "", lang: "JavaScript" },
                   os: { platform: "browser", name: navigator.userAgent, version: "" }, audio: { source } } }));
    socket.send(textMessage([["Path", "speech.context"], ["X-RequestId", requestId]],
      { phraseDetection: {}, audio: { streams: { 1: null } } }));
    socket.send(audioMessage(requestId, waveHeader(), "audio/x-wav"));
    liveStatus.textContent = "listening";
  };
  socket.onmessage = (e) => onServiceMessage(e.data);
  socket.onclose = (e) => {
    if (live && !live.stopping) liveStatus.textContent = `stopped: ${e.reason || `connection closed (${e.code})`}`;
    else liveStatus.textContent = "";
    release();
  };
  mic.port.onmessage = (e) => {
    if (socket.readyState !== WebSocket.OPEN || live.stopping) return;
    for (const sample of e.data) {
      pending[filled++] = Math.max(-32768, Math.min(32767, Math.round(sample * 32767)));
      if (filled === FRAME) {
        socket.send(audioMessage(requestId, pending));
        pending = new Int16Array(FRAME);
        filled = 0;
      }
    }
  };
}

function release() {
  if (live) {
    live.stream.getTracks().forEach((track) => track.stop());
    live.context.close();
    live = null;
  }
  micButton.setAttribute("aria-pressed", "false");
  micButton.textContent = "Start live transcription";
}

// The empty audio message ends the turn: the server sends its last phrase, then turn.end.
function stop() {
  live.stopping = true;
  live.stream.getTracks().forEach((track) => track.stop());
  if (live.socket.readyState === WebSocket.OPEN) live.socket.send(audioMessage(live.requestId, new Uint8Array(0)));
  else live.socket.close();
  liveStatus.textContent = "finishing";
}

micButton.addEventListener("click", async () => {
  if (live) {
    stop();
    return;
  }
  micButton.setAttribute("aria-pressed", "true");
  micButton.textContent = "Stop";
  try {
    await start();
  } catch (error) {
    liveStatus.textContent = `the microphone cannot be used: ${error.message}`;
    release();
  }
});
