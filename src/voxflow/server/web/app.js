// voxflow's page: files go to the server's own OpenAI-style API (/v1/audio/...), streamed as
// server-sent events; each segment is shown as it is recognised, and the finished transcript
// can be downloaded in every format voxflow writes. Nothing is fetched from anywhere else.
"use strict";

const AT_ONCE = 2; // files transcribed at once (the server answers more with 429)
const FORMATS = ["txt", "srt", "vtt", "json"];
const TYPES = { txt: "text/plain", srt: "application/x-subrip", vtt: "text/vtt", json: "application/json" };

const jobs = document.getElementById("jobs");
const template = document.getElementById("job");
const drop = document.getElementById("drop");
const input = document.getElementById("files");
const queue = [];
let running = 0;

function field(id) {
  return document.getElementById(id).value.trim();
}

function clock(seconds) {
  const m = Math.floor(seconds / 60);
  const s = (seconds - 60 * m).toFixed(1).padStart(4, "0");
  return `${m}:${s}`;
}

// The file's length in seconds as the browser reads it (null when it cannot), for progress.
function mediaDuration(file) {
  return new Promise((resolve) => {
    const media = document.createElement(file.type.startsWith("video") ? "video" : "audio");
    const url = URL.createObjectURL(file);
    const done = (value) => {
      URL.revokeObjectURL(url);
      resolve(value);
    };
    media.preload = "metadata";
    media.onloadedmetadata = () => done(Number.isFinite(media.duration) ? media.duration : null);
    media.onerror = () => done(null);
    media.src = url;
  });
}

function addFiles(files) {
  for (const file of files) {
    const node = template.content.firstElementChild.cloneNode(true);
    node.querySelector(".name").textContent = file.name;
    jobs.append(node);
    const job = {
      file, node, duration: null, finished: false,
      status: node.querySelector(".status"),
      bar: node.querySelector("progress"),
      list: node.querySelector(".segments"),
      downloads: node.querySelector(".downloads"),
      settings: { language: field("language"), task: field("task"), key: field("key") },
    };
    mediaDuration(file).then((seconds) => { job.duration = seconds; });
    queue.push(job);
  }
  pump();
}

function pump() {
  while (running < AT_ONCE && queue.length) {
    const job = queue.shift();
    running += 1;
    run(job).finally(() => {
      running -= 1;
      pump();
    });
  }
}

function fail(job, message) {
  job.node.classList.add("failed");
  job.status.textContent = message;
}

function errorMessage(xhr) {
  try {
    return JSON.parse(xhr.responseText).error.message;
  } catch {
    return `the server answered ${xhr.status}`;
  }
}

// One upload, its events read as they arrive; a busy server (429) is asked again.
function run(job) {
  return new Promise((resolve) => {
    const { language, task, key } = job.settings;
    const form = new FormData();
    form.append("model", "whisper-1");
    form.append("response_format", "verbose_json");
    form.append("stream", "true");
    if (language) form.append("language", language);
    form.append("file", job.file, job.file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", task === "translate" ? "/v1/audio/translations" : "/v1/audio/transcriptions");
    if (key) xhr.setRequestHeader("Authorization", `Bearer ${key}`);
    let seen = 0;
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      job.bar.value = e.loaded / e.total;
      job.status.textContent = `uploading ${Math.round((100 * e.loaded) / e.total)} %`;
    };
    xhr.upload.onload = () => {
      job.bar.value = 0;
      job.status.textContent = "transcribing";
    };
    xhr.onprogress = () => {
      if (xhr.status === 200) seen = consume(job, xhr.responseText, seen);
    };
    xhr.onload = () => {
      if (xhr.status === 429) {
        const wait = Number(xhr.getResponseHeader("Retry-After")) || 1;
        job.status.textContent = "waiting for the server";
        setTimeout(() => run(job).then(resolve), 1000 * wait);
        return;
      }
      if (xhr.status !== 200) {
        fail(job, errorMessage(xhr));
      } else {
        consume(job, xhr.responseText, seen);
        if (!job.finished && !job.node.classList.contains("failed")) fail(job, "the stream ended early");
      }
      resolve();
    };
    xhr.onerror = () => {
      fail(job, "the server could not be reached");
      resolve();
    };
    xhr.send(form);
  });
}

// Handle the complete server-sent events in text[seen:]; return where the next one starts.
function consume(job, text, seen) {
  let end = text.indexOf("\n\n", seen);
  while (end !== -1) {
    const data = text.slice(seen, end).split("\n")
      .filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(5).trim())
      .join("\n");
    if (data) handle(job, JSON.parse(data));
    seen = end + 2;
    end = text.indexOf("\n\n", seen);
  }
  return seen;
}

function handle(job, event) {
  if (event.error) {
    fail(job, event.error.message);
  } else if (event.type === "transcript.text.segment") {
    const item = document.createElement("li");
    item.className = "segment";
    const time = document.createElement("time");
    time.textContent = `${clock(event.start)}–${clock(event.end)}`;
    const lang = document.createElement("span");
    lang.className = "lang";
    lang.textContent = event.language || "";
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = event.text;
    item.append(time, lang, text);
    job.list.append(item);
    if (job.duration) job.bar.value = Math.min(1, event.end / job.duration);
  } else if (event.type === "transcript.text.done") {
    job.finished = true;
    job.bar.value = 1;
    job.status.textContent = "done";
    const stem = job.file.name.replace(/\.[^.]*$/, "") || "transcript";
    for (const fmt of FORMATS) {
      const link = document.createElement("a");
      const blob = new Blob([event.files[fmt]], { type: `${TYPES[fmt]};charset=utf-8` });
      link.href = URL.createObjectURL(blob);
      link.download = `${stem}.${fmt}`;
      link.dataset.format = fmt;
      link.textContent = fmt.toUpperCase();
      job.downloads.append(link);
    }
    job.downloads.hidden = false;
  }
}

input.addEventListener("change", () => {
  addFiles(input.files);
  input.value = "";
});
drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  addFiles(e.dataTransfer.files);
});
