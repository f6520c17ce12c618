// docconv's page behaviour: live job cards over WebSocket, and a nicer
// upload form. Pages work without it; this only adds.
import { connectStreamSource, disconnectStreamSource } from "./turbo.es2017-esm.js";

// Open streams by job id, so a card never has two.
const streams = new Map();

function cardFor(id) {
  return document.getElementById(`job-${id}`);
}

function isEnded(card) {
  return !card || card.dataset.ended === "true";
}

function watch(id, url, attempt = 0) {
  if (streams.has(id) || isEnded(cardFor(id))) return;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}${url}`);
  streams.set(id, socket);
  connectStreamSource(socket);
  socket.addEventListener("open", () => { attempt = 0; });
  socket.addEventListener("close", (event) => {
    disconnectStreamSource(socket);
    if (streams.get(id) === socket) streams.delete(id);
    // 1000: the job ended and the last frame arrived. Anything else was
    // abnormal (network, restart): reconnect with backoff. The stream starts
    // with the current state, so nothing is lost in between.
    if (event.code === 1000 || socket.stoppedByPage) return;
    const delay = Math.min(10000, 500 * 2 ** attempt) * (0.75 + Math.random() / 2);
    setTimeout(() => watch(id, url, attempt + 1), delay);
  });
}

function watchAll() {
  for (const card of document.querySelectorAll("[data-job-card]")) {
    if (!isEnded(card)) watch(card.id.replace(/^job-/, ""), card.dataset.streamUrl);
  }
}

function stopAll() {
  for (const socket of streams.values()) {
    socket.stoppedByPage = true;
    // Closing a socket that is still connecting makes the browser log a
    // failed connection: one left that soon is closed as it opens.
    if (socket.readyState === WebSocket.CONNECTING) {
      socket.addEventListener("open", () => socket.close(1000));
    } else {
      socket.close(1000);
    }
  }
  streams.clear();
}

function enhanceUpload() {
  const form = document.querySelector("[data-upload]");
  if (!form || form.dataset.enhanced) return;
  form.dataset.enhanced = "true";
  const input = form.querySelector("input[type=file]");
  const drop = form.querySelector("[data-drop]");
  const chosen = form.querySelector("[data-chosen]");
  const show = () => {
    const names = Array.from(input.files, (file) => file.name);
    chosen.textContent = names.length ? names.join(", ") : "";
  };
  input.addEventListener("change", show);
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (event) => {
      event.preventDefault();
      drop.classList.add("is-over");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    drop.addEventListener(type, () => drop.classList.remove("is-over"));
  }
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer?.files?.length) {
      input.files = event.dataTransfer.files;
      show();
    }
  });
}

// turbo:load runs on the first page and after every Turbo visit.
document.addEventListener("turbo:load", () => {
  enhanceUpload();
  watchAll();
});
document.addEventListener("turbo:before-visit", stopAll);
// Back/forward from the browser's page cache: the page may show an old
// state, so reconnect; the first frame brings the card up to date.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) watchAll();
});
window.addEventListener("pagehide", stopAll);
