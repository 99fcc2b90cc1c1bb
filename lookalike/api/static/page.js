// Lookalike search page: plain JS, no build step, no external resources.
"use strict";

const $ = (id) => document.getElementById(id);
const MESSAGES = {
  401: "This search needs a key: open the page as /#key=YOUR_READ_KEY.",
  404: "That image is no longer in the index.",
  413: "That file is too large to search with.",
  415: "That file is not an image. Choose a JPEG, PNG, WebP, GIF, BMP or TIFF photo.",
  422: "That image could not be read (damaged, or a format we cannot decode).",
  503: "Search is unavailable right now (the model server or the index is down). Try again shortly.",
};
const key = new URLSearchParams(location.hash.slice(1)).get("key");
let query = null; // {image: Blob, name} or {similar: id, name}
let lastImage = null; // the last photo searched with, to go back to from "more like this"
let pending = null; // the AbortController of the search on screen; a newer search aborts it

function headers(extra = {}) {
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

function say(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function call(url, options = {}) {
  const response = await fetch(url, { ...options, headers: headers(options.headers) });
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) {
    const reason = body && body.error ? body.error : response.statusText;
    const error = new Error(`${MESSAGES[response.status] || "Search failed."} (${response.status}: ${reason})`);
    error.status = response.status;
    throw error;
  }
  return body;
}

function options() {
  const params = new URLSearchParams();
  params.set("k", String(Math.max(1, Number($("k").value) || 12)));
  if ($("category").value) params.set("category", $("category").value);
  const tags = $("tags").value.split(",").map((t) => t.trim()).filter(Boolean);
  if (tags.length) params.set("tags", tags.join(","));
  const min = Number($("min").value) || 0;
  if (min > 0) params.set("min_similarity", String(min / 100));
  return params;
}

function view() {
  return document.querySelector("input[name=view]:checked").value;
}

function baseName(source, id) {
  if (!source) return id;
  return source.split(/[\\/]/).pop() || source;
}

function showThumbnail(img, id) {
  const url = `/images/${encodeURIComponent(id)}/thumbnail`;
  if (!key) { img.src = url; return; } // an <img> cannot send the key: fetch it, then show the blob
  fetch(url, { headers: headers() })
    .then((response) => (response.ok ? response.blob() : null))
    .then((blob) => { if (blob) img.src = URL.createObjectURL(blob); });
}

// Outline the region of the hit that matched (hit.box: left, top, right, bottom as fractions of
// the image) over the thumbnail, shown whole ("contain") so the fractions map onto it.
function outline(node, img, box) {
  const frame = node.querySelector(".frame");
  const mark = node.querySelector(".region");
  node.classList.add("has-region");
  const place = () => {
    if (!img.naturalWidth) return;
    const scale = Math.min(frame.clientWidth / img.naturalWidth, frame.clientHeight / img.naturalHeight);
    const width = img.naturalWidth * scale, height = img.naturalHeight * scale;
    const left = (frame.clientWidth - width) / 2, top = (frame.clientHeight - height) / 2;
    mark.style.left = `${left + box[0] * width}px`;
    mark.style.top = `${top + box[1] * height}px`;
    mark.style.width = `${(box[2] - box[0]) * width}px`;
    mark.style.height = `${(box[3] - box[1]) * height}px`;
    mark.hidden = false;
  };
  img.addEventListener("load", place);
  new ResizeObserver(place).observe(frame);
  mark.title = "the part of this image that matched";
}

function renderHits(hits, into) {
  const gallery = document.createElement("div");
  gallery.className = "gallery";
  for (const hit of hits) {
    const node = $("hit").content.firstElementChild.cloneNode(true);
    const name = baseName(hit.source, hit.id);
    const img = node.querySelector("img");
    showThumbnail(img, hit.id);
    img.alt = name;
    node.querySelector(".score").textContent = `${(hit.similarity * 100).toFixed(1)} %`;
    node.querySelector(".name").textContent = name;
    node.querySelector(".category").textContent = hit.category || "no category";
    const more = node.querySelector(".more");
    more.setAttribute("aria-label", `More like ${name}`);
    more.addEventListener("click", () => { query = { similar: hit.id, name }; run(); });
    node.dataset.id = hit.id;
    if (hit.verdict) {
      const verdict = node.querySelector(".verdict");
      verdict.textContent = hit.verdict.replace("_", " ");
      verdict.title = hit.verification && hit.verification.reason ? hit.verification.reason : "";
      verdict.classList.add(hit.verdict);
      verdict.hidden = false;
    }
    if (hit.box) outline(node, img, hit.box);
    gallery.append(node);
  }
  into.append(gallery);
}

async function run() {
  if (!query) return;
  // Only the newest search may write the page: an older answer arriving late would show
  // results (or an error) for a photo that is no longer the one asked about.
  if (pending) pending.abort();
  const mine = new AbortController();
  pending = mine;
  const signal = mine.signal;
  const results = $("results");
  say(query.similar ? `Looking for images like ${query.name} …` : "Searching …");
  try {
    let body;
    if (query.similar) {
      body = await call(`/similar/${encodeURIComponent(query.similar)}?${options()}`, { signal });
    } else if (view() === "per-category") {
      const n = Math.min(8, Math.max(1, Number($("k").value) || 4));
      body = await call(`/search?per_category=${n}`, { method: "POST", body: query.image, signal,
        headers: { "Content-Type": query.image.type || "application/octet-stream" } });
    } else {
      const params = options();
      if (!$("verify").checked) params.set("verify", "false");
      body = await call(`/search?${params}`, { method: "POST", body: query.image, signal,
        headers: { "Content-Type": query.image.type || "application/octet-stream" } });
    }
    if (pending !== mine) return;
    results.replaceChildren();
    if (body.per_category) {
      const groups = Object.entries(body.per_category);
      for (const [name, hits] of groups) {
        const section = document.createElement("section");
        section.className = "group";
        const title = document.createElement("h2");
        title.textContent = `${name} — best ${hits.length}`;
        section.append(title);
        renderHits(hits, section);
        results.append(section);
      }
      say(`Best matches in each of ${groups.length} categories (${body.took_ms} ms).`);
    } else {
      renderHits(body.hits, results);
      const what = query.similar ? `like ${query.name}` : "for your photo";
      say(`${body.hits.length} look-alike${body.hits.length === 1 ? "" : "s"} ${what} (${body.took_ms} ms).`);
    }
  } catch (error) {
    if (pending !== mine) return; // superseded: the newer search says what happened
    results.replaceChildren();
    say(error.message, true);
  }
}

function useFile(file) {
  if (!file) return;
  query = { image: file, name: file.name || "pasted image" };
  lastImage = query;
  const preview = $("preview");
  if (file.type.startsWith("image/")) {
    preview.src = URL.createObjectURL(file);
    preview.alt = `Your photo: ${query.name}`;
    preview.hidden = false;
  } else {
    preview.hidden = true;
  }
  run();
}

async function loadCategories() {
  try {
    const body = await call("/categories");
    for (const { name, count } of body.categories) {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = `${name} (${count})`;
      $("category").append(option);
    }
  } catch (error) {
    say(error.message, true);
  }
}

function wire() {
  const drop = $("drop");
  $("file").addEventListener("change", (event) => {
    useFile(event.target.files[0]);
    event.target.value = ""; // choosing the same file again searches again
  });
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    useFile(event.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (event) => {
    const item = [...event.clipboardData.items].find((entry) => entry.kind === "file");
    if (item) useFile(item.getAsFile());
  });
  $("controls").addEventListener("change", (event) => {
    // "Best in each category" is a view of the photo: leave "more like this" for it.
    if (event.target.name === "view" && view() === "per-category" && lastImage) query = lastImage;
    run();
  });
  $("controls").addEventListener("submit", (event) => { event.preventDefault(); run(); });
  loadCategories();
}

wire();
